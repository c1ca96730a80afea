/* legacy_cxx.h - the C side of auth_legacy's C++ adapter (legacy_cxx.cc).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_AUTH_LEGACY_CXX_H
#define MPSD_AUTH_LEGACY_CXX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the vendor's C++ Authenticate did. */
enum al_cxx_result {
    AL_CXX_FALSE = 0, /* returned false (errorString in msg, possibly empty) */
    AL_CXX_TRUE = 1,  /* returned true (errorString in msg, usually empty) */
    AL_CXX_THREW = 2, /* threw: msg says what (std::exception::what(), or that it was not one) */
};

/* Call fn, the vendor's `extern "C" bool Authenticate(string userName, string userPassword,
 * string paramStr, string &errorString)` (seed 003 section 7.2), with copies of the three
 * strings. Whatever it leaves in errorString, or the exception it throws, is copied into
 * msg[0..msg_len) (always terminated, cut to fit). Never throws; returns an al_cxx_result.
 * Thread rules are the vendor's: the caller serialises when asked to. */
int al_call_cxx(void *fn, const char *user, const char *password, const char *params, char *msg,
                size_t msg_len);

#ifdef __cplusplus
}
#endif

#endif
