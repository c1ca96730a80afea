/* test_no_symbol.c - test-only module exporting its descriptor under the wrong symbol.
 * SPDX-License-Identifier: Apache-2.0
 * The loader looks for mps_module_test_no_symbol and must refuse the file. */
#include <mpsd/module.h>

static const struct mps_module tns_module = {
    MPS_MODULE_HEADER,
    .name = "test_no_symbol",
    .version = "0",
    .description = "test module: exported under the wrong name, refused",
};

MPS_MODULE_EXPORT(something_else, tns_module)
