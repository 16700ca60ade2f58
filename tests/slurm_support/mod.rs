//! A real single-node Slurm for the Slurm tests and benchmark: munged,
//! slurmctld and slurmd from Debian's packages, with the configuration, key,
//! state, spool, logs, socket and pid files under a temporary folder, run in
//! the foreground as children and stopped by PID when dropped.
//!
//! The daemons listen on fixed ports, so one cluster runs at a time on a
//! machine: a lock file serializes clusters across processes. Slurm must be
//! installed (`scripts/test` installs it): without it [`Cluster::start`]
//! panics, so the tests fail rather than skip. Run as root, as CI does.

#![allow(dead_code)] // The tests and the benchmark use different parts.

#[path = "../common/mod.rs"]
mod common;

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use common::text;
use common::tiny_experiment;

/// Ports unlikely to clash with a real Slurm (6817/6818) or anything else.
const CONTROLLER_PORT: u16 = 47817;
const NODE_PORT: u16 = 47818;
/// Held while a cluster runs, by whichever process runs one.
const MACHINE_LOCK: &str = "/tmp/runner-slurm-test.lock";
/// How long a whole submission may take before the caller gives up.
pub const PATIENCE: Duration = Duration::from_secs(300);

/// A running single-node cluster and a scratch folder for the experiments.
pub struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
    _machine: File,
}

impl Cluster {
    pub fn start(name: &str) -> Cluster {
        for program in ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel"] {
            let found = Command::new(program)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok();
            assert!(
                found,
                "`{program}` is not installed: the Slurm tests need Debian's slurmctld, slurmd, slurm-client and \
                 munge (scripts/test installs them: apt-get install slurmctld slurmd slurm-client munge)"
            );
        }
        let machine = File::create(MACHINE_LOCK).unwrap();
        machine.lock().unwrap();

        let dir = std::env::temp_dir().join(format!("runner-slurm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["state", "spool", "work"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let mut cluster = Cluster {
            conf: dir.join("slurm.conf"),
            dir,
            daemons: Vec::new(),
            _machine: machine,
        };
        cluster.start_munge();
        std::fs::write(&cluster.conf, cluster.config()).unwrap();
        let conf = cluster.conf.display().to_string();
        cluster.spawn("slurmctld", &["-D", "-i", "-f", &conf]);
        cluster.spawn("slurmd", &["-D", "-f", &conf, "-N", &node_name()]);
        cluster.wait_until_idle();
        cluster
    }

    /// munged with its own key and socket, so it never meets the machine's.
    fn start_munge(&mut self) {
        let key = self.dir.join("munge.key");
        let mut bytes = vec![0; 1024];
        File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
        std::fs::write(&key, bytes).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = |name: &str| self.dir.join(name).display().to_string();
        let args = [
            "-F".to_owned(),
            format!("--socket={}", path("munge.sock")),
            format!("--key-file={}", path("munge.key")),
            format!("--pid-file={}", path("munged.pid")),
            format!("--log-file={}", path("munged.log")),
            format!("--seed-file={}", path("munged.seed")),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn("munged", &args);
        self.wait("munged's socket", Duration::from_secs(20), || {
            self.dir.join("munge.sock").exists()
        });
    }

    fn config(&self) -> String {
        let path = |name: &str| self.dir.join(name).display().to_string();
        let node = node_name();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        format!(
            "ClusterName=runnertest\n\
             SlurmctldHost={node}(127.0.0.1)\n\
             SlurmctldPort={CONTROLLER_PORT}\n\
             SlurmdPort={NODE_PORT}\n\
             SlurmUser={user}\n\
             AuthType=auth/munge\n\
             CredType=cred/munge\n\
             AuthInfo=socket={socket}\n\
             StateSaveLocation={state}\n\
             SlurmdSpoolDir={spool}\n\
             SlurmctldPidFile={ctld_pid}\n\
             SlurmdPidFile={d_pid}\n\
             SlurmctldLogFile={ctld_log}\n\
             SlurmdLogFile={d_log}\n\
             SlurmctldDebug=info\n\
             SlurmdDebug=info\n\
             MailProg=/bin/true\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             MpiDefault=none\n\
             SchedulerType=sched/builtin\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_CPU\n\
             ReturnToService=2\n\
             MessageTimeout=5\n\
             SlurmdTimeout=30\n\
             InactiveLimit=0\n\
             KillWait=2\n\
             MinJobAge=600\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\n\
             NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=500 State=UNKNOWN\n\
             PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            user = user.trim(),
            socket = path("munge.sock"),
            state = path("state"),
            spool = path("spool"),
            ctld_pid = path("slurmctld.pid"),
            d_pid = path("slurmd.pid"),
            ctld_log = path("slurmctld.log"),
            d_log = path("slurmd.log"),
        )
    }

    fn spawn(&mut self, program: &'static str, args: &[&str]) {
        let log = File::create(self.dir.join(format!("{program}.stderr"))).unwrap();
        let child = Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        self.daemons.push((program, child));
    }

    pub fn wait(&self, what: &str, patience: Duration, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < patience,
                "{what}: nothing after {patience:?}\n{}",
                self.diagnostics()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_until_idle(&self) {
        self.wait("the node to become idle", Duration::from_secs(60), || {
            let out = self.slurm("sinfo", &["--noheader", "--Node", "--format=%T"]);
            String::from_utf8_lossy(&out.stdout).trim() == "idle"
        });
    }

    /// A Slurm client command talking to this cluster.
    pub fn slurm(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap()
    }

    /// `runner ARGS` against the tests' store ([`Cluster::store`]).
    pub fn runner(&self, args: &[&str]) -> Output {
        self.runner_with_store(args, &self.store())
    }

    /// `runner ARGS --store STORE` in the scratch folder, talking to this cluster.
    pub fn runner_with_store(&self, args: &[&str], store: &Path) -> Output {
        Command::new(env!("CARGO_BIN_EXE_runner"))
            .args(args)
            .arg("--store")
            .arg(store)
            .current_dir(self.work())
            .env("SLURM_CONF", &self.conf)
            .env("NO_COLOR", "1")
            .env("OMP_NUM_THREADS", "1")
            .output()
            .unwrap()
    }

    /// The scratch folder experiments and stores live in.
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// The runs store of the tests.
    pub fn store(&self) -> PathBuf {
        self.dir.join("work/runs")
    }

    /// Writes an experiment with the tiny settings and `extra` nodes.
    pub fn experiment(&self, name: &str, epochs: u32, extra: &str) -> String {
        let path = self.dir.join(format!("work/{name}.kdl"));
        std::fs::write(&path, tiny_experiment(name, epochs, extra)).unwrap();
        path.display().to_string()
    }

    /// The job's state once it has left PENDING and RUNNING.
    pub fn wait_for_job(&self, job: &str) -> String {
        let mut state = String::new();
        self.wait(&format!("job {job} to end"), PATIENCE, || {
            let out = self.slurm("squeue", &["--noheader", "--states=all", "--jobs", job, "--format=%T"]);
            state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            !state.is_empty() && !matches!(state.as_str(), "PENDING" | "CONFIGURING" | "RUNNING" | "COMPLETING")
        });
        state
    }

    /// The logs of the daemons and of every task, and the queue.
    pub fn diagnostics(&self) -> String {
        let mut text = String::new();
        let queue = self.slurm("squeue", &["--all", "--array", "--states=all"]);
        text += &format!("--- squeue\n{}{}", lossy(&queue.stdout), lossy(&queue.stderr));
        let mut files: Vec<PathBuf> = [
            "munged.log",
            "munged.stderr",
            "slurmctld.log",
            "slurmctld.stderr",
            "slurmd.log",
            "slurmd.stderr",
        ]
        .iter()
        .map(|name| self.dir.join(name))
        .collect();
        files.extend(find_files(&self.store(), "out"));
        for file in files {
            let content = std::fs::read_to_string(&file).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            text += &format!("\n--- {}\n{tail}", file.display());
        }
        text
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Jobs first, so no slurmstepd outlives the cluster.
        let listed = self.slurm("squeue", &["--noheader", "--format=%A"]);
        for job in lossy(&listed.stdout).split_whitespace() {
            let _ = self.slurm("scancel", &[job]);
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15)
            && !lossy(&self.slurm("squeue", &["--noheader"]).stdout).trim().is_empty()
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        for (_, child) in self.daemons.iter_mut().rev() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("the cluster's files are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    host.trim().split('.').next().unwrap().to_owned()
}

pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Files under `dir` whose name ends with `.EXT`, sorted.
pub fn find_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(find_files(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The job ids `runner exec --backend slurm` printed: array, then collation.
pub fn job_ids(output: &Output) -> (String, String) {
    let out = lossy(&output.stdout);
    let id = |prefix: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{out}"))
            .to_owned()
    };
    (id("job array"), id("collation"))
}
