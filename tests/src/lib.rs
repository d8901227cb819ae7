pub mod lab;
pub mod openwrt;
pub mod procd;
