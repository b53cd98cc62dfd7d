//! Relay strategies.
