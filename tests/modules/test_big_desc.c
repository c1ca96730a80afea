/* test_big_desc.c - test-only module whose descriptor is larger than the ABI minor it claims
 * defines (built against a different module.h): mpsd must refuse it with one line.
 * SPDX-License-Identifier: Apache-2.0 */
#include <mpsd/module.h>

struct big_desc {
    struct mps_module m;
    void *unknown_member; /* what the core cannot know the meaning of */
};

static const struct big_desc tbd_module = {
    .m = {
        .abi = MPS_ABI_VERSION,
        .size = sizeof(struct big_desc),
        .name = "test_big_desc",
        .version = "0",
        .description = "test module: descriptor larger than its ABI minor defines, refused",
    },
};

MPS_EXPORT const struct mps_module *mps_module_test_big_desc(void);
const struct mps_module *
mps_module_test_big_desc(void)
{
    return &tbd_module.m;
}
