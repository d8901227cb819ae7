pub mod docs;
pub mod lab;
pub mod openwrt;
pub mod packages;
pub mod procd;
