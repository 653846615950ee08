//! The xtask integration tests, one binary: the set-up (`support`, the fixtures, the local Fly
//! harnesses) is compiled and linked once instead of once per test file.

mod support;

mod deploy_support;
mod localfly_support;
mod report_fixtures;
mod webhook_support;

mod alerting;
mod announce;
mod api_tools;
mod architecture;
mod backup;
mod backup_sqlite;
mod deploy_flow;
mod deploy_guard;
mod deploy_localfly;
mod deploy_logs;
mod flyctl_secrets;
mod hostile_files;
mod image;
mod interrupt;
mod junit;
mod localfly;
mod localfly_faults;
mod localfly_modes;
mod logs;
mod ops_metrics;
mod ops_runbooks;
mod overlap;
mod overlap_service;
mod pgcluster;
mod predeploy;
mod promote;
mod record_signatures;
mod records;
mod regions;
mod rehearse;
mod report;
mod report_caps;
mod smoke;
mod smoke_hung;
mod smoke_load;
mod staging;
mod watch;
mod watch_localfly;
mod workflow_lint;
