//! Writes apk-tools v3 packages (the ADB format of apk-v3(5)), for OpenWrt 25.12 and later. A build-time
//! tool: the package assembler (`openwrt-package/build-packages.sh`) calls its binary; nothing of it is in
//! the agent. The format is checked by an independent reader in the tests and by the real apk-tools
//! (docs/PACKAGES.md).

pub mod adb;
pub mod depend;
pub mod package;
pub mod schema;
pub mod tree;
