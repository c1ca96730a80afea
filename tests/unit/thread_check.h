/* thread_check.h - an assertion for threads other than cmocka's (the unit tests that run
 * loops in threads of their own): print where and abort, so the test fails.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_TEST_THREAD_CHECK_H
#define MPSD_TEST_THREAD_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
