# mpsd_feature.m4 - optional parts that are built when their dependencies are there.
# SPDX-License-Identifier: Apache-2.0
#
# MPSD_FEATURE_RESOLVE(CHOICE-VAR, HAVE-VAR, ERROR, WARNING)
# CHOICE-VAR holds what the user asked for: yes, no or auto (--enable-X / --with-X);
# HAVE-VAR says whether the dependencies were found (yes or no). Asked for but missing: stop
# with ERROR. auto: CHOICE-VAR becomes HAVE-VAR, with WARNING when the part is left out.
AC_DEFUN([MPSD_FEATURE_RESOLVE],
[AS_IF([test "x$$1" = xyes && test "x$$2" = xno], [AC_MSG_ERROR([$3])])
AS_IF([test "x$$1" = xauto],
  [$1=$$2
   AS_IF([test "x$$2" = xno], [AC_MSG_WARN([$4])])])
])
