//! The load-balancer drivers, against real HAProxy and nginx where there are any.

mod drivers;
mod haproxy;
mod kubernetes;
mod nginx;
mod preflight_haproxy;
