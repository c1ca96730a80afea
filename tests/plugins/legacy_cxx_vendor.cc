// legacy_cxx_vendor.cc - a vendor library with the Intel MPS's C++ Authenticate (seed 003
// section 7.2), built by tests/integration/auth_legacy.sh with g++ (never shipped).
// SPDX-License-Identifier: Apache-2.0
//
// paramStr: "file USERS [log CALLS] [sleep SECONDS]", as the reference's sample took
// "file <path to file\filename>". USERS holds user:password lines. Every call appends
// "params=<paramStr>|user=<user>" to CALLS (never the password). Users with a meaning:
//   thrower     throws std::runtime_error       intthrower  throws an int
//   echo        refuses with the password in errorString (mpsd must not log it)
//   sleeper     sleeps SECONDS before it decides, writing "sleeper start" first
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unistd.h>

using std::string;

static void
note(const string &path, const string &line)
{
    if (path.empty())
        return;
    std::ofstream out(path.c_str(), std::ios::app);
    out << line << "\n";
}

extern "C" __attribute__((visibility("default"))) bool
Authenticate(string userName, string userPassword, string paramStr, string &errorString)
{
    std::istringstream words(paramStr);
    string word, file, calls;
    int sleep_s = 0;

    while (words >> word) {
        if (word == "file")
            words >> file;
        else if (word == "log")
            words >> calls;
        else if (word == "sleep")
            words >> sleep_s;
    }
    note(calls, "params=" + paramStr + "|user=" + userName);
    if (userName == "thrower")
        throw std::runtime_error("vendor backend exploded");
    if (userName == "intthrower")
        throw 42;
    if (userName == "echo") {
        errorString = "wrong password " + userPassword + " given";
        return false;
    }
    if (userName == "sleeper") {
        note(calls, "sleeper start");
        sleep(sleep_s);
    }
    std::ifstream in(file.c_str());
    if (!in) {
        errorString = "cannot open " + file;
        return false;
    }
    string line;
    while (std::getline(in, line)) {
        string::size_type colon = line.find(':');
        if (colon == string::npos || line.substr(0, colon) != userName)
            continue;
        if (line.substr(colon + 1) == userPassword)
            return true;
        errorString = "wrong password";
        return false;
    }
    errorString = "no such user";
    return false;
}
