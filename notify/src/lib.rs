//! jiancha's notifications.

pub mod config;
