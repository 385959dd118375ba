# Install layout (GNUInstallDirs):
#   component "runtime" (`cmake --install BUILD --component runtime`):
#     bin/sluice
#     lib/systemd/system/sluice.service   ExecStart= rewritten to the installed binary
#     share/doc/sluice/routes.example.yaml
#   component "deb" (the package adds these to runtime):
#     /etc/sluice/routes.yaml             the example, as a conffile
#     share/doc/sluice/copyright, changelog.gz
# `cmake --install BUILD --prefix /usr` gives the paths Debian packages use; the unit is
# rewritten at install time, so a --prefix given then (not only at configure time) is honoured.
include(GNUInstallDirs)

install(TARGETS sluice RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)

set(SLUICE_SYSTEMD_UNIT_DIR "lib/systemd/system"
    CACHE STRING "Where the systemd unit goes, relative to the install prefix")
# Generated files are staged in a directory of their own per destination, so that installs
# running at once (cpack beside `cmake --install --prefix /usr/local`) never share one.
set(SLUICE_STAGE "${PROJECT_BINARY_DIR}/install/\${stage}")
install(CODE "
  string(MD5 stage \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}\")
  set(unit_dir \"\${CMAKE_INSTALL_PREFIX}/${SLUICE_SYSTEMD_UNIT_DIR}\")
  file(READ \"${PROJECT_SOURCE_DIR}/deploy/systemd/sluice.service\" unit)
  string(REPLACE \"/usr/bin/sluice\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/sluice\"
         unit \"\${unit}\")
  file(WRITE \"${SLUICE_STAGE}/sluice.service\" \"\${unit}\")
  file(INSTALL \"${SLUICE_STAGE}/sluice.service\" DESTINATION \"\${unit_dir}\"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
" COMPONENT runtime)

install(FILES config/routes.example.yaml DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)

# The unit reads /etc/sluice/routes.yaml whatever the prefix, so the conffile's place is
# absolute. It is in the package only: `cmake --install --component runtime` never overwrites
# a configuration an operator wrote by hand.
set(SLUICE_DEBIAN_DIR ${PROJECT_SOURCE_DIR}/deploy/debian)
install(FILES config/routes.example.yaml DESTINATION /etc/sluice RENAME routes.yaml
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ COMPONENT deb)
install(FILES ${SLUICE_DEBIAN_DIR}/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT deb)
# Debian wants the changelog compressed with gzip -9n (no name or time stamp: reproducible).
# Its top entry names the project's VERSION (tests/deploy/test_package.py checks).
install(CODE "
  string(MD5 stage \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}\")
  file(MAKE_DIRECTORY \"${SLUICE_STAGE}\")
  execute_process(COMMAND gzip -9nc \"${SLUICE_DEBIAN_DIR}/changelog\"
                  OUTPUT_FILE \"${SLUICE_STAGE}/changelog.gz\"
                  COMMAND_ERROR_IS_FATAL ANY)
  file(INSTALL \"${SLUICE_STAGE}/changelog.gz\"
       DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}\"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
" COMPONENT deb)

# `cpack --config BUILD/CPackConfig.cmake` builds, under /usr:
#   sluice_<version>_<arch>.deb          stripped binary, unit, conffile, maintainer scripts;
#                                        Depends computed by dpkg-shlibdeps
#   sluice-dbgsym_<version>_<arch>.ddeb  the debug symbols, /usr/lib/debug/.build-id/…
# The release preset gives the package to ship; the ci preset's (sanitizers) is for tests.
set(CPACK_PACKAGE_NAME sluice)
set(CPACK_PACKAGE_VENDOR sluice)
set(CPACK_PACKAGE_CONTACT "sluice maintainers <sluice@example.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Appwrite Realtime to Kafka, webhooks and files")
set(CPACK_PACKAGE_DESCRIPTION
    "sluice holds one authenticated Appwrite Realtime subscription and forwards\n\
every event that matches a YAML routing table to files, Kafka topics and HTTP\n\
webhooks, at least once, with retries, a bounded buffer and a dead-letter\n\
file. It exports Prometheus metrics and measures the gaps Appwrite cannot\n\
replay.")
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL OFF)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "ca-certificates")
# Splits the debug information off (objcopy --only-keep-debug) and strips the binary, which
# keeps a debuglink to it. CPACK_STRIP_FILES would strip first and leave nothing to split.
set(CPACK_DEBIAN_DEBUGINFO_PACKAGE ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${SLUICE_DEBIAN_DIR}/conffiles ${SLUICE_DEBIAN_DIR}/postinst ${SLUICE_DEBIAN_DIR}/prerm
    ${SLUICE_DEBIAN_DIR}/postrm)
include(CPack)
