//! Rebinding a group.
