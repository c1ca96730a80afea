// legacy_cxx.cc - auth_legacy's C++ adapter: the one C++ file of mpsd. It calls a vendor's
// Authenticate with the seed's std::string prototype and keeps C++ exceptions on this side.
// SPDX-License-Identifier: Apache-2.0
//
// Seed 003 section 7.2: "Authentication dlls should contain the following prototype:
//   extern "C" declspec(dllexport)
//   bool Authenticate(string userName ,string userPassword ,
//   string paramStr ,string &errorString) ;"
// The strings are std::string of the libstdc++ this file is built with, so a vendor library
// must use the same string ABI (GCC 5 and later by default: _GLIBCXX_USE_CXX11_ABI=1).
#include "legacy_cxx.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

namespace
{

typedef bool (*vendor_authenticate)(std::string userName, std::string userPassword,
                                    std::string paramStr, std::string &errorString);

void
copy_out(const char *text, char *msg, size_t msg_len)
{
    if (msg_len > 0)
        std::snprintf(msg, msg_len, "%s", text);
}

} // namespace

extern "C" int
al_call_cxx(void *fn, const char *user, const char *password, const char *params, char *msg,
            size_t msg_len)
{
    // dlsym() hands out an object pointer; POSIX guarantees it converts to the function.
    vendor_authenticate authenticate = reinterpret_cast<vendor_authenticate>(fn);
    std::string errorString;
    int rc;

    try {
        // The three by-value strings are the call's own parameter objects (C++17: built in
        // place), destroyed right after the call; they hold the only copies of the password
        // this side makes, and the vendor's prototype leaves no way to wipe them.
        rc =
            authenticate(std::string(user), std::string(password), std::string(params), errorString)
                ? AL_CXX_TRUE
                : AL_CXX_FALSE;
        copy_out(errorString.c_str(), msg, msg_len);
    } catch (const std::exception &e) {
        // what() of a vendor's exception is its text; a null one is not worth a crash.
        // Nothing in a handler may throw again (this is an extern "C" boundary): no strings.
        const char *what = e.what();
        if (msg_len > 0)
            std::snprintf(msg, msg_len, "Authenticate threw an exception: %s",
                          what ? what : "(no text)");
        rc = AL_CXX_THREW;
    } catch (...) {
        copy_out("Authenticate threw something that is not a std::exception", msg, msg_len);
        rc = AL_CXX_THREW;
    }
    // The vendor may have echoed the password into errorString; msg is checked by the caller.
    if (!errorString.empty())
        std::memset(&errorString[0], 0, errorString.size());
    return rc;
}
