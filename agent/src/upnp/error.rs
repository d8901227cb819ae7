//! The UPnP control errors we answer with (UPnP Device Architecture and the WANIPConnection:1/2 specs).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum UpnpError {
    InvalidAction,
    InvalidArgs,
    ActionFailed,
    ActionNotAuthorized,
    SpecifiedArrayIndexInvalid,
    NoSuchEntryInArray,
    WildCardNotPermittedInSrcIp,
    WildCardNotPermittedInExtPort,
    ConflictInMappingEntry,
    SamePortValuesRequired,
    OnlyPermanentLeasesSupported,
    RemoteHostOnlySupportsWildcard,
    ExternalPortOnlySupportsWildcard,
    NoPortMapsAvailable,
    ConflictWithOtherMechanisms,
    PortMappingNotFound,
    WildCardNotPermittedInIntPort,
    InconsistentParameters,
}

impl UpnpError {
    const ALL: [UpnpError; 18] = {
        use UpnpError::*;
        [
            InvalidAction,
            InvalidArgs,
            ActionFailed,
            ActionNotAuthorized,
            SpecifiedArrayIndexInvalid,
            NoSuchEntryInArray,
            WildCardNotPermittedInSrcIp,
            WildCardNotPermittedInExtPort,
            ConflictInMappingEntry,
            SamePortValuesRequired,
            OnlyPermanentLeasesSupported,
            RemoteHostOnlySupportsWildcard,
            ExternalPortOnlySupportsWildcard,
            NoPortMapsAvailable,
            ConflictWithOtherMechanisms,
            PortMappingNotFound,
            WildCardNotPermittedInIntPort,
            InconsistentParameters,
        ]
    };

    /// The error of a code another IGD answered with.
    pub fn from_code(code: u16) -> Option<UpnpError> {
        Self::ALL.into_iter().find(|e| e.code() == code)
    }

    pub fn code(self) -> u16 {
        use UpnpError::*;
        match self {
            InvalidAction => 401,
            InvalidArgs => 402,
            ActionFailed => 501,
            ActionNotAuthorized => 606,
            SpecifiedArrayIndexInvalid => 713,
            NoSuchEntryInArray => 714,
            WildCardNotPermittedInSrcIp => 715,
            WildCardNotPermittedInExtPort => 716,
            ConflictInMappingEntry => 718,
            SamePortValuesRequired => 724,
            OnlyPermanentLeasesSupported => 725,
            RemoteHostOnlySupportsWildcard => 726,
            ExternalPortOnlySupportsWildcard => 727,
            NoPortMapsAvailable => 728,
            ConflictWithOtherMechanisms => 729,
            PortMappingNotFound => 730,
            WildCardNotPermittedInIntPort => 732,
            InconsistentParameters => 733,
        }
    }

    /// The errorDescription the specs give for the code.
    pub fn description(self) -> &'static str {
        use UpnpError::*;
        match self {
            InvalidAction => "Invalid Action",
            InvalidArgs => "Invalid Args",
            ActionFailed => "Action Failed",
            ActionNotAuthorized => "Action not authorized",
            SpecifiedArrayIndexInvalid => "SpecifiedArrayIndexInvalid",
            NoSuchEntryInArray => "NoSuchEntryInArray",
            WildCardNotPermittedInSrcIp => "WildCardNotPermittedInSrcIP",
            WildCardNotPermittedInExtPort => "WildCardNotPermittedInExtPort",
            ConflictInMappingEntry => "ConflictInMappingEntry",
            SamePortValuesRequired => "SamePortValuesRequired",
            OnlyPermanentLeasesSupported => "OnlyPermanentLeasesSupported",
            RemoteHostOnlySupportsWildcard => "RemoteHostOnlySupportsWildcard",
            ExternalPortOnlySupportsWildcard => "ExternalPortOnlySupportsWildcard",
            NoPortMapsAvailable => "NoPortMapsAvailable",
            ConflictWithOtherMechanisms => "ConflictWithOtherMechanisms",
            PortMappingNotFound => "PortMappingNotFound",
            WildCardNotPermittedInIntPort => "WildCardNotPermittedInIntPort",
            InconsistentParameters => "InconsistentParameters",
        }
    }
}

/// A refused call: the UPnP error and the reason in words (for the log and the API, never to the client
/// beyond the standard description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: UpnpError,
    pub reason: String,
}

impl Refusal {
    pub fn new(error: UpnpError, reason: impl Into<String>) -> Self {
        Refusal {
            error,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.error.code(),
            self.error.description(),
            self.reason
        )
    }
}
