# Writes OUT (a header defining SLUICE_GIT_COMMIT) from the checkout in SOURCE_DIR, run at every
# build so that `sluice --version` names the commit it was built from. The header is rewritten
# only when the text changes, so an unchanged commit recompiles nothing. COMMIT, when given
# (-DSLUICE_GIT_COMMIT=... for builds without a checkout, e.g. from a source archive), wins.
if(NOT COMMIT)
  execute_process(COMMAND git -C "${SOURCE_DIR}" rev-parse --short=12 HEAD
                  OUTPUT_VARIABLE COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE failed ERROR_QUIET)
  if(failed OR NOT COMMIT)
    set(COMMIT "unknown")
  else()
    execute_process(COMMAND git -C "${SOURCE_DIR}" status --porcelain --untracked-files=no
                    OUTPUT_VARIABLE changes ERROR_QUIET)
    if(changes)
      string(APPEND COMMIT "-dirty")
    endif()
  endif()
endif()
set(text "#pragma once\n#define SLUICE_GIT_COMMIT \"${COMMIT}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
