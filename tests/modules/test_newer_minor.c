/* test_newer_minor.c - test-only module needing a newer ABI minor than ours: refused.
 * SPDX-License-Identifier: Apache-2.0 */
#include <mpsd/module.h>

static const struct mps_module tnm_module = {
    .abi = (uint32_t)(1u << 16 | (MPS_ABI_MINOR + 1u)),
    .size = sizeof(struct mps_module),
    .name = "test_newer_minor",
    .version = "0",
    .description = "test module: ABI minor newer than this mpsd, refused",
};

MPS_MODULE_EXPORT(test_newer_minor, tnm_module)
