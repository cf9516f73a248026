//! Asking the operating system for a server's socket: the one place every server binds.

use std::net::{SocketAddr, TcpListener};

use crate::{Error, Result};

/// Binds `addr` for a server run on tokio (non-blocking) and returns the listener with the
/// address it got (the port the system chose when `addr` asked for port 0).
///
/// # Errors
/// [`Error::Bind`] with the operating system's error (the address is in use, no permission).
pub(crate) fn listen(addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    let fail = |source: std::io::Error| Error::Bind { addr: addr.to_string(), source };
    let listener = TcpListener::bind(addr).map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    let local = listener.local_addr().map_err(fail)?;
    Ok((listener, local))
}
