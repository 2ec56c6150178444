//! The programs the lab installs for its nodes (seen there as
//! /usr/local/sbin): PID 1 of a node and its boot script, HyperPod's node tools with their real
//! command lines (`dcgmi`, `nvidia-smi`, `gpu_burn`, `dcgmproftester`,
//! `reboot`), the node's `dmesg`, `systemctl` for Slurm's daemons, the
//! `srun --auto-resume=1` wrapper, and
//! the canary workload (`hpchaos-canary.sbatch`, `hpchaos-train`).
//! They are small scripts, kept as files under
//! `crates/hpchaos-lab/src/scripts/`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// (file name, contents).
const SCRIPTS: &[(&str, &str)] = &[
    ("hpchaos-node-init", include_str!("scripts/node-init")),
    ("hpchaos-node-boot", include_str!("scripts/node-boot")),
    ("dcgmi", include_str!("scripts/dcgmi")),
    ("nvidia-smi", include_str!("scripts/nvidia-smi")),
    ("gpu_burn", include_str!("scripts/gpu_burn")),
    ("dcgmproftester", include_str!("scripts/dcgmproftester")),
    ("reboot", include_str!("scripts/reboot")),
    ("dmesg", include_str!("scripts/dmesg")),
    ("srun", include_str!("scripts/srun")),
    ("systemctl", include_str!("scripts/systemctl")),
    ("hpchaos-train", include_str!("scripts/hpchaos-train")),
    (
        "hpchaos-canary.sbatch",
        include_str!("scripts/hpchaos-canary.sbatch"),
    ),
];

/// Writes every script into `bin`, executable.
pub fn install(bin: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(bin)?;
    for (name, text) in SCRIPTS {
        let path = bin.join(name);
        std::fs::write(&path, text)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}
