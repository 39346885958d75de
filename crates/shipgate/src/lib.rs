//! shipgate: a multi-carrier shipment integration gateway. See README.md.

pub mod app;
pub mod cache;
pub mod carriers;
pub mod cli;
pub mod config;
pub mod console;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod http;
pub mod ids;
pub mod jobs;
pub mod queue;
pub mod runtime;
pub mod sandbox;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod tracking;
pub mod webhooks;
