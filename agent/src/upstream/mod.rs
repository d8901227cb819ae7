//! The gateway upstream (issue 16): when this router's WAN address is private or shared (double NAT,
//! CGNAT), the mappings in force here are asked for there too, so the internet reaches the Command
//! Center through both NATs. The agent is only ever a client on the WAN side, never a server.
//!
//! - `pcp`, `natpmp`: the two port-control protocols' messages, as bytes.

pub mod natpmp;
pub mod pcp;
