//! The device an experiment asks for (`device = "auto" | "cpu" | "cuda" | "cuda:N" | "mps"`,
//! or `--device`), as text; `execution::device` resolves it against the machine.

use std::fmt;

/// A device as asked for; in files as its text (`"cuda:1"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Request {
    #[default]
    Auto,
    Cpu,
    /// `cuda` (the first GPU; jobs may spread over all of them) or `cuda:N`.
    Cuda(Option<usize>),
    Mps,
}

impl Request {
    /// Parses `auto`, `cpu`, `cuda`, `cuda:N` or `mps`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "is {text:?}; use \"auto\", \"cpu\", \"cuda\", \"cuda:N\" (N a GPU index) or \"mps\""
            )
        };
        Ok(match text {
            "auto" => Request::Auto,
            "cpu" => Request::Cpu,
            "cuda" => Request::Cuda(None),
            "mps" => Request::Mps,
            _ => {
                let index = text.strip_prefix("cuda:").ok_or_else(bad)?;
                Request::Cuda(Some(index.parse().map_err(|_| bad())?))
            }
        })
    }
}

impl TryFrom<String> for Request {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Request::parse(&text)
    }
}

impl From<Request> for String {
    fn from(request: Request) -> String {
        request.to_string()
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Auto => f.write_str("auto"),
            Request::Cpu => f.write_str("cpu"),
            Request::Cuda(None) => f.write_str("cuda"),
            Request::Cuda(Some(i)) => write!(f, "cuda:{i}"),
            Request::Mps => f.write_str("mps"),
        }
    }
}
