//! wilife-agent: makes an OpenWrt router do what the WiLife / Logitech Alert camera system needs.
//!
//! The pure core — `config` → `firewall::render` (+ `firewall::text`) — takes values and returns values;
//! the I/O shells around it are `firewall::apply` (nft), `firewall::monitor` (netlink), `net::rtnl`
//! (links, addresses, neighbours), `api` (HTTP) and `daemon` (the state owner and its threads).

#[macro_use]
pub mod log;
pub mod api;
pub mod cameras;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod consts;
pub mod daemon;
pub mod diagnosis;
pub mod firewall;
pub mod http;
pub mod net;
pub mod netlink;
pub mod owner;
pub mod probe;
pub mod queue;
pub mod random;
pub mod rpcd;
pub mod selftest;
pub mod status;
#[cfg(test)]
mod testing;
pub mod upnp;
pub mod upstream;
