//! nginx as a path under test: the stream module, round robin (its default), `worker_processes`
//! = workers.
//!
//! Owns finding nginx and its stream module (built in, or a dynamic module loaded with
//! `load_module`), and nginx's config text and command line. Open-source nginx has no active
//! health checks, only passive ones; that is the one difference from the other proxies. Never
//! daemonises nginx and never touches the system's nginx config or logs: everything lives in the
//! run directory.

use std::{
    fmt::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
};

use crate::process::find_program;

use super::{backend_list, connection_limit, Proxy, Setup, Unavailable};

/// Where distributions put the dynamic stream module.
const MODULE_DIRS: [&str; 4] = [
    "/usr/lib/nginx/modules",
    "/usr/lib64/nginx/modules",
    "/usr/share/nginx/modules",
    "/usr/local/nginx/modules",
];
const MODULE_FILE: &str = "ngx_stream_module.so";
const INSTALL: &str = "apt-get install nginx-light libnginx-mod-stream";

/// nginx with a usable stream module.
#[derive(Debug, Clone)]
pub struct Nginx {
    binary: PathBuf,
    /// The module to `load_module`, or `None` when stream is built in.
    module: Option<PathBuf>,
    /// Whether `-e` (startup error log) is supported (nginx 1.19.5 and later).
    error_log_flag: bool,
}

impl Nginx {
    /// Finds nginx and its stream module, or says what to install.
    pub fn discover() -> Result<Nginx, Unavailable> {
        let binary = find_program("nginx").ok_or_else(|| {
            Unavailable::Skipped(format!("nginx is not on PATH (install: {INSTALL})"))
        })?;
        let build = Command::new(&binary)
            .arg("-V")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stderr).into_owned())
            .map_err(|e| Unavailable::Broken(format!("cannot run {} -V: {e}", binary.display())))?;
        let module = match stream_support(&build) {
            Stream::BuiltIn => None,
            Stream::Dynamic(dir) => Some(find_module(dir.as_deref()).ok_or_else(|| {
                Unavailable::Skipped(format!(
                    "nginx's stream module is not installed (install: {INSTALL})"
                ))
            })?),
        };
        Ok(Nginx {
            binary,
            module,
            error_log_flag: version(&build).is_some_and(|v| v >= (1, 19, 5)),
        })
    }
}

impl Proxy for Nginx {
    fn name(&self) -> &'static str {
        "nginx"
    }

    fn config_file(&self) -> &'static str {
        "nginx.conf"
    }

    fn config(&self, listen: SocketAddr, setup: &Setup) -> String {
        let mut text = String::from(
            "# Written by loadtest for one run: TCP (stream) proxy, round robin.\n\
             # Open-source nginx has no active health checks; passive ones are the default.\n",
        );
        if let Some(module) = &self.module {
            let _ = writeln!(text, "load_module {};", module.display());
        }
        let _ = write!(
            text,
            "worker_processes {workers};\ndaemon off;\n\
             pid {pid};\nerror_log stderr warn;\n\n\
             events {{\n    worker_connections {limit};\n}}\n\n\
             stream {{\n    upstream replicas {{\n",
            workers = setup.workers,
            pid = setup.dir.join("nginx.pid").display(),
            limit = connection_limit(setup),
        );
        for backend in backend_list(setup) {
            let _ = writeln!(text, "        server {backend};");
        }
        let _ = write!(
            text,
            "    }}\n\n    server {{\n        listen {listen};\n        proxy_pass replicas;\n        \
             proxy_connect_timeout 5s;\n    }}\n}}\n"
        );
        text
    }

    fn command(&self, config: &Path, setup: &Setup) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("-p").arg(&setup.dir).arg("-c").arg(config);
        if self.error_log_flag {
            command.args(["-e", "stderr"]);
        }
        command
    }
}

/// How this nginx build provides the stream module.
#[derive(Debug, PartialEq, Eq)]
enum Stream {
    /// Compiled in.
    BuiltIn,
    /// A dynamic module (or none at all), maybe with the build's `--modules-path`.
    Dynamic(Option<PathBuf>),
}

/// Reads the configure arguments printed by `nginx -V`.
fn stream_support(build: &str) -> Stream {
    let args: Vec<&str> = build.split_whitespace().collect();
    let modules_path = args
        .iter()
        .find_map(|a| a.strip_prefix("--modules-path="))
        .map(PathBuf::from);
    if args.contains(&"--with-stream") {
        Stream::BuiltIn
    } else {
        // `--with-stream=dynamic`, or a package that ships the module separately: look for it.
        Stream::Dynamic(modules_path)
    }
}

/// The stream module file, in the build's module directory or a usual place.
fn find_module(modules_path: Option<&Path>) -> Option<PathBuf> {
    modules_path
        .into_iter()
        .map(Path::to_path_buf)
        .chain(MODULE_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(MODULE_FILE))
        .find(|file| file.is_file())
}

/// The version from `nginx version: nginx/1.22.1`.
fn version(build: &str) -> Option<(u32, u32, u32)> {
    let text = build.split("nginx/").nth(1)?.split_whitespace().next()?;
    let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_and_stream_support() {
        let debian = "nginx version: nginx/1.22.1\nconfigure arguments: --with-cc-opt=-g \
                      --modules-path=/usr/lib/nginx/modules --with-stream=dynamic --with-stream_ssl_module";
        assert_eq!(version(debian), Some((1, 22, 1)));
        assert_eq!(
            stream_support(debian),
            Stream::Dynamic(Some(PathBuf::from("/usr/lib/nginx/modules")))
        );
        let built_in = "nginx version: nginx/1.18.0\nconfigure arguments: --with-stream --with-http_ssl_module";
        assert_eq!(stream_support(built_in), Stream::BuiltIn);
        assert_eq!(version(built_in), Some((1, 18, 0)));
    }

    #[test]
    fn config_is_a_stream_proxy_over_every_replica() {
        let setup = Setup {
            dir: PathBuf::from("/tmp/run"),
            ..Setup::example(1)
        };
        let nginx = Nginx {
            binary: "nginx".into(),
            module: Some("/usr/lib/nginx/modules/ngx_stream_module.so".into()),
            error_log_flag: true,
        };
        let text = nginx.config("127.0.0.1:8000".parse().unwrap(), &setup);
        assert!(text.starts_with("# Written by loadtest"));
        assert!(text.contains("load_module /usr/lib/nginx/modules/ngx_stream_module.so;"));
        assert!(text.contains("worker_processes 1;"));
        assert!(text.contains("server 127.0.0.1:9002;"));
        assert!(text.contains("listen 127.0.0.1:8000;"));
        assert!(text.contains("pid /tmp/run/nginx.pid;"));
    }
}
