//! The tests' HTTP receivers: reading one HTTP/1.1 request at a time off a keep-alive
//! connection.

use std::io::Read;
use std::net::TcpStream;

/// The next request on `stream`: its head (request line and headers, as text) and its body.
/// `buffer` keeps what arrived after it (the next request of a keep-alive connection); `None`
/// once the client closed the connection.
pub fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_more(stream, buffer)?;
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        read_more(stream, buffer)?;
    }
    let body = buffer.drain(..head_end + length).skip(head_end).collect();
    Some((head, body))
}

/// The path of a request's head (`/v1/traces`).
pub fn path(head: &str) -> String {
    head.split_whitespace().nth(1).unwrap_or_default().to_owned()
}

fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk) {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}
