# Install layout (GNUInstallDirs, component "runtime"):
#   bin/sluice
#   lib/systemd/system/sluice.service   ExecStart= rewritten to the installed binary
#   share/doc/sluice/routes.example.yaml
# `cmake --install BUILD --prefix /usr` gives the paths Debian packages use; the unit is
# rewritten at install time, so a --prefix given then (not only at configure time) is honoured.
include(GNUInstallDirs)

install(TARGETS sluice RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)

set(SLUICE_SYSTEMD_UNIT_DIR "lib/systemd/system"
    CACHE STRING "Where the systemd unit goes, relative to the install prefix")
install(CODE "
  set(unit_dir \"\${CMAKE_INSTALL_PREFIX}/${SLUICE_SYSTEMD_UNIT_DIR}\")
  file(READ \"${PROJECT_SOURCE_DIR}/deploy/systemd/sluice.service\" unit)
  string(REPLACE \"/usr/bin/sluice\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/sluice\"
         unit \"\${unit}\")
  file(WRITE \"${PROJECT_BINARY_DIR}/install/sluice.service\" \"\${unit}\")
  file(INSTALL \"${PROJECT_BINARY_DIR}/install/sluice.service\" DESTINATION \"\${unit_dir}\"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
" COMPONENT runtime)

install(FILES config/routes.example.yaml DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)

# `cpack -G DEB --config BUILD/CPackConfig.cmake` builds a .deb of the runtime component, with
# library dependencies computed by dpkg-shlibdeps; CPack installs it under /usr.
set(CPACK_PACKAGE_NAME sluice)
set(CPACK_PACKAGE_VENDOR sluice)
set(CPACK_PACKAGE_CONTACT "sluice maintainers <sluice@example.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Appwrite Realtime to Kafka, webhooks and files")
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL OFF)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "ca-certificates")
include(CPack)
