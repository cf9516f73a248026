//! Workspace-level tests: behaviour that spans crates, run end to end.

mod quickstart_incident_is_caught;
mod quickstart_workload_is_reported_exactly;
