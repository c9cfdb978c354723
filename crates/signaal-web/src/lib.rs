//! What people look at. `charts` draws SVG (Pareto bars, timelines with their expected band and
//! alert markers, the frequency × impact scatter, an action's before/after) as plain strings, with
//! every mark carrying `data-key` and `data-value` so tests can count them against the API;
//! `report` makes the monthly report, one self-contained printable HTML page; `server` serves the
//! coordinator's page (`page`, `views`) and the live feed (`live`) beside the API.

pub mod charts;
pub mod live;
pub mod page;
pub mod report;
pub mod server;
pub mod views;

pub use server::{WebConfig, WebState};
