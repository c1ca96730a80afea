/* test_bad_major.c - test-only module built for a future ABI major: mpsd must refuse it.
 * SPDX-License-Identifier: Apache-2.0 */
#include <mpsd/module.h>

static const struct mps_module tbm_module = {
    .abi = (uint32_t)(2u << 16 | 0u),
    .size = sizeof(struct mps_module),
    .name = "test_bad_major",
    .version = "0",
    .description = "test module: ABI 2.0, refused",
};

MPS_MODULE_EXPORT(test_bad_major, tbm_module)
