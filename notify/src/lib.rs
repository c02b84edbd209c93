//! jiancha's notifications: alerts pushed to people where they are — a generic JSON webhook,
//! Alertmanager (API v2), WeCom (企业微信) and DingTalk (钉钉) group robots, SMS gateways —
//! routed by rule, level and region, de-duplicated by alert (the id includes the level, so an
//! escalation is a new message), limited against storms, retried with backoff.
//!
//! - [`config`]: the `[notify]` settings and their validation;
//! - [`notice`]: the alert (SPEC §7 JSON) as notifications see it;
//! - [`text`]: the zh-CN messages;
//! - [`payload`]: each channel's request format and how its answers are read;
//! - [`dispatch`]: the state machine (routing, de-duplication, limits, queues, retries), no I/O;
//! - [`driver`]: the task that runs it with HTTP and a persisted [`driver::Ledger`].

pub mod config;
pub mod dispatch;
pub mod driver;
pub mod notice;
pub mod payload;
pub mod text;

pub use dispatch::{Dispatcher, Fate, Key, Record};
pub use driver::{Input, Ledger, MemoryLedger};
pub use notice::Notice;
pub use text::Names;
