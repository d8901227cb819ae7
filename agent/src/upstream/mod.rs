//! The gateway upstream (issue 16): when this router's WAN address is private or shared (double NAT,
//! CGNAT), the mappings in force here are asked for there too, so the internet reaches the Command
//! Center through both NATs. The agent is only ever a client on the WAN side, never a server.
//!
//! - `pcp`, `natpmp`: the two port-control protocols' messages, as bytes; `igd`: the gateway's UPnP
//!   IGD as a client sees it (search, description, SOAP), as text;
//! - `cascade`: the pure core (what to ask for, what is held, what is due);
//! - `client`: one request to the gateway and its answer;
//! - `worker`: the thread that runs them for the state owner and publishes the status.

pub mod cascade;
pub mod client;
pub mod igd;
pub mod natpmp;
pub mod pcp;
pub mod worker;
