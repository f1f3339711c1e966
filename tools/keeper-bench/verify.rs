//! `--verify`: read back what a run wrote and check it, so a benchmark
//! cannot report operations the server did not really perform.

use crate::conn::Session;
use crate::run::Plan;
use crate::workload::Workload;
use keeper::proto::codes::OpCode;
use keeper::proto::encode;
use keeper::proto::request::Request;

async fn children(s: &mut Session, path: &str) -> std::io::Result<Vec<String>> {
    let reply = s.call(OpCode::GetChildren, &Request::GetChildren { path: path.to_string(), watch: false }).await?;
    if reply.header.err != 0 {
        return Err(std::io::Error::other(format!("getChildren {path}: error {}", reply.header.err)));
    }
    let mut body = reply.body;
    body.strings().map_err(|e| std::io::Error::other(e.to_string()))
}

async fn data(s: &mut Session, path: &str) -> std::io::Result<Vec<u8>> {
    let reply = s.call(OpCode::GetData, &Request::GetData { path: path.to_string(), watch: false }).await?;
    if reply.header.err != 0 {
        return Err(std::io::Error::other(format!("getData {path}: error {}", reply.header.err)));
    }
    let mut body = reply.body;
    let (data, _) = encode::get_data_response(&mut body).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(data.map(|d| d.to_vec()).unwrap_or_default())
}

/// Checks the nodes a run wrote hold the data it wrote (at most 1000 read back).
pub async fn check(s: &mut Session, plan: &Plan) -> std::io::Result<()> {
    let shape = &plan.shape;
    let expect = shape.data();
    let dir = match plan.workload {
        Workload::Set | Workload::Mixed | Workload::Multi | Workload::Get | Workload::Exists => shape.data_dir(),
        Workload::Create => shape.create_dir(),
        Workload::Populate => shape.namespace.clone(),
        Workload::Delete => {
            let left = children(s, &shape.delete_dir()).await?;
            return if left.is_empty() { Ok(()) } else { Err(std::io::Error::other(format!("{} nodes were not deleted", left.len()))) };
        }
        _ => return Ok(()),
    };
    let names = children(s, &dir).await?;
    let wanted = match plan.workload {
        Workload::Populate => names.iter().filter(|n| n.starts_with('p')).count(),
        _ => names.len(),
    };
    if plan.workload == Workload::Populate && wanted != shape.nodes {
        return Err(std::io::Error::other(format!("{dir} holds {wanted} populated nodes, expected {}", shape.nodes)));
    }
    for name in names.iter().filter(|n| plan.workload != Workload::Populate || n.starts_with('p')).take(1000) {
        let got = data(s, &format!("{dir}/{name}")).await?;
        if got != expect.as_ref() {
            return Err(std::io::Error::other(format!("{dir}/{name} holds {} bytes, not the {} bytes written", got.len(), expect.len())));
        }
    }
    eprintln!("verify: {} nodes under {dir} hold what was written", names.len().min(1000));
    Ok(())
}
