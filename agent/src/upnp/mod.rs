//! The UPnP Internet Gateway Device, scoped to WiLife: SSDP discovery on the LAN, device and service
//! descriptions, SOAP control, GENA eventing — and a pure policy that grants only the direct-mode ports.

pub mod carried;
pub mod control;
pub mod description;
pub mod discovery;
pub mod error;
pub mod gena;
pub mod leases;
pub mod notifier;
pub mod policy;
pub mod relay;
pub mod relayd;
pub mod server;
pub mod soap;
pub mod ssdp;
pub mod ssdp_socket;
pub mod xml;
