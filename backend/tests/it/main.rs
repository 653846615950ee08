//! The backend's integration tests, one binary: the shared set-up (`common`: apps on both
//! databases, the fake payment and messaging servers) is compiled and linked once.

#[macro_use]
mod common;

mod admin;
mod api;
mod architecture;
mod caches;
mod calendar;
mod cutoff;
mod edge;
mod email;
mod guest_loop;
mod hardening;
mod middleware;
mod openapi;
mod openapi_clients;
mod ops;
mod regions;
mod warm;
mod webhook_limits;
mod webhooks;
