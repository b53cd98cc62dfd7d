//! Reading `/proc`: a process's CPU time, resident memory and threads, its descendants, and the
//! machine's memory (available memory, kernel slab) and TCP sockets.
//!
//! Owns parsing the kernel's text formats (pure functions, tested on captured samples) and the
//! few reads the harness makes around a phase. A "process of a path" is the process the harness
//! started (or was given with `--target-pid`) and every process descended from it, so nginx's
//! master and its workers count together; threads are included by the kernel in their
//! process's figures. Never writes to `/proc` and never signals a process.

use std::{collections::BTreeMap, fs, io};

/// Fields of `/proc/<pid>/stat` that the harness uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Parent process id (field 4).
    pub ppid: u32,
    /// Time spent in user mode, in clock ticks (field 14, `utime`).
    pub user_ticks: u64,
    /// Time spent in kernel mode, in clock ticks (field 15, `stime`).
    pub system_ticks: u64,
}

/// Parses one `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may
/// itself hold spaces and parentheses, so fields are counted from the *last* `)`.
pub fn parse_stat(text: &str) -> Result<Stat, String> {
    let close = text
        .rfind(')')
        .ok_or_else(|| format!("no command name in {text:?}"))?;
    // After the name come field 3 (state), 4 (ppid), … so field n sits at index n - 3.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Result<u64, String> {
        let raw = fields
            .get(n - 3)
            .ok_or_else(|| format!("field {n} missing in {text:?}"))?;
        raw.parse()
            .map_err(|_| format!("field {n} is not a number: {raw:?}"))
    };
    Ok(Stat {
        ppid: u32::try_from(field(4)?).map_err(|_| "ppid out of range".to_owned())?,
        user_ticks: field(14)?,
        system_ticks: field(15)?,
    })
}

/// Fields of `/proc/<pid>/status` that the harness uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    /// Resident set size in bytes (`VmRSS`; 0 for kernel threads, which have none).
    pub rss_bytes: u64,
    /// Threads of the process (`Threads`).
    pub threads: u64,
}

/// Parses `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> Result<Status, String> {
    let threads = kib_or_count(text, "Threads").ok_or("no Threads line")?;
    Ok(Status {
        rss_bytes: kib_or_count(text, "VmRSS").unwrap_or(0) * 1024,
        threads,
    })
}

/// Machine-wide memory and sockets at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Machine {
    /// `MemAvailable` of `/proc/meminfo`, in bytes.
    pub mem_available: u64,
    /// `Slab` of `/proc/meminfo` (kernel objects, sockets among them), in bytes.
    pub slab: u64,
    /// TCP sockets allocated (`TCP: … alloc` of `/proc/net/sockstat`).
    pub tcp_sockets: u64,
}

/// Parses `/proc/meminfo` and `/proc/net/sockstat`.
pub fn parse_machine(meminfo: &str, sockstat: &str) -> Result<Machine, String> {
    let kib = |key| kib_or_count(meminfo, key).ok_or(format!("no {key} in /proc/meminfo"));
    let tcp = sockstat
        .lines()
        .find_map(|line| line.strip_prefix("TCP:"))
        .ok_or("no TCP line in /proc/net/sockstat")?;
    let words: Vec<&str> = tcp.split_whitespace().collect();
    let tcp_sockets = words
        .chunks(2)
        .find(|pair| pair[0] == "alloc")
        .and_then(|pair| pair.get(1)?.parse().ok())
        .ok_or("no TCP alloc count in /proc/net/sockstat")?;
    Ok(Machine {
        mem_available: kib("MemAvailable")? * 1024,
        slab: kib("Slab")? * 1024,
        tcp_sockets,
    })
}

/// The number on the line `key:   123 kB` (the unit, if any, is dropped).
fn kib_or_count(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, rest) = line.split_once(':')?;
        (k.trim() == key).then(|| rest.split_whitespace().next()?.parse().ok())?
    })
}

/// Reads `/proc/<pid>/stat`.
pub fn stat(pid: u32) -> io::Result<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads `/proc/<pid>/status`.
pub fn status(pid: u32) -> io::Result<Status> {
    let text = fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The machine's memory and TCP sockets now.
pub fn machine() -> io::Result<Machine> {
    let meminfo = fs::read_to_string("/proc/meminfo")?;
    let sockstat = fs::read_to_string("/proc/net/sockstat")?;
    parse_machine(&meminfo, &sockstat).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// `root` and every process descended from it, with their `stat`, by pid. Fails only when
/// `root` itself cannot be read (it exited); a descendant that exits meanwhile is left out.
pub fn tree(root: u32) -> io::Result<BTreeMap<u32, Stat>> {
    let root_stat = stat(root)?;
    let mut all = BTreeMap::new();
    for entry in fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(s) = stat(pid) {
            all.insert(pid, s);
        }
    }
    all.insert(root, root_stat);
    Ok(descendants(root, &all))
}

/// The entries of `all` that are `root` or descend from it (pure; `all` maps pid to stat).
pub fn descendants(root: u32, all: &BTreeMap<u32, Stat>) -> BTreeMap<u32, Stat> {
    let mut found = BTreeMap::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        if let Some(s) = all.get(&parent) {
            if found.insert(parent, *s).is_none() {
                frontier.extend(
                    all.iter()
                        .filter(|(pid, s)| s.ppid == parent && **pid != parent)
                        .map(|(pid, _)| *pid),
                );
            }
        }
    }
    found
}

/// Clock ticks per second of the `stat` times (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn clock_ticks_per_second() -> u64 {
    use nix::unistd::{sysconf, SysconfVar};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(hz)) if hz > 0 => hz as u64,
        _ => 100,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let line = "31289 (cat) R 31287 31287 22491 0 -1 4194304 103 0 1 0 17 42 0 0 20 0 1 0 \
                    739267 3133440 382 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            s,
            Stat {
                ppid: 31287,
                user_ticks: 17,
                system_ticks: 42
            }
        );
        // A command name with spaces and a parenthesis of its own.
        let odd = "77 (we ird) (x) S 1 77 77 0 -1 0 0 0 0 0 5 6 0 0 20 0 4 0 1 2 3";
        let s = parse_stat(odd).unwrap();
        assert_eq!((s.ppid, s.user_ticks, s.system_ticks), (1, 5, 6));
        assert!(parse_stat("12 (short) S 1 2").is_err());
        assert!(parse_stat("no name here").is_err());
    }

    #[test]
    fn status_and_meminfo_are_read_in_bytes() {
        let status = "Name:\tringlb\nVmPeak:\t  90000 kB\nVmRSS:\t   18240 kB\nThreads:\t4\n";
        assert_eq!(
            parse_status(status).unwrap(),
            Status {
                rss_bytes: 18240 * 1024,
                threads: 4
            }
        );
        let kthread = "Name:\tkworker\nThreads:\t1\n";
        assert_eq!(parse_status(kthread).unwrap().rss_bytes, 0);
        assert!(parse_status("Name:\tx\n").is_err());
        let meminfo = "MemTotal:       24683584 kB\nMemFree:  1 kB\nMemAvailable:   23985632 kB\n\
                       Buffers: 2 kB\nSlab:             612340 kB\n";
        let sockstat =
            "sockets: used 410\nTCP: inuse 12 orphan 0 tw 3 alloc 17 mem 1\nUDP: inuse 1 mem 0\n";
        assert_eq!(
            parse_machine(meminfo, sockstat).unwrap(),
            Machine {
                mem_available: 23985632 * 1024,
                slab: 612340 * 1024,
                tcp_sockets: 17
            }
        );
        assert!(parse_machine("MemTotal: 1 kB\n", sockstat).is_err());
        assert!(parse_machine(meminfo, "UDP: inuse 1\n").is_err());
    }

    #[test]
    fn descendants_follow_parent_links() {
        let s = |ppid| Stat {
            ppid,
            user_ticks: 0,
            system_ticks: 0,
        };
        // 10 is nginx's master, 11 and 12 its workers, 13 a grandchild; 20 is unrelated.
        let all: BTreeMap<u32, Stat> = [(1, s(0)), (10, s(1)), (11, s(10)), (12, s(10))]
            .into_iter()
            .chain([(13, s(12)), (20, s(1))])
            .collect();
        let found: Vec<u32> = descendants(10, &all).into_keys().collect();
        assert_eq!(found, [10, 11, 12, 13]);
        assert!(descendants(99, &all).is_empty());
    }

    #[test]
    fn this_process_can_be_read() {
        let me = std::process::id();
        let tree = tree(me).unwrap();
        assert!(tree.contains_key(&me));
        assert!(status(me).unwrap().threads >= 1);
        assert!(machine().unwrap().mem_available > 0);
        assert!(clock_ticks_per_second() >= 100);
    }
}
