"""`--launcher slurm`: one Slurm job per run through submitit (`cftrain.slurm`: submission, watching,
one resubmission, logs beside each run)."""

from __future__ import annotations

from cftrain.launchers import LaunchOption, Launcher, register

OPTIONS = (
    LaunchOption("slurm_partition", "Slurm: the partition [default: the cluster's]."),
    LaunchOption("slurm_time", "Slurm: each job's time limit, minutes or HH:MM:SS (sbatch --time)."),
    LaunchOption("slurm_gpus", "Slurm: GPUs per job (pair with --device cuda).", int, low=0),
    LaunchOption("slurm_cpus", "Slurm: CPUs per job (pair with --threads).", int, low=1),
    LaunchOption("slurm_mem", "Slurm: memory per job, e.g. 16G (sbatch --mem)."),
    LaunchOption("slurm_option", "Slurm: any other sbatch option as NAME=VALUE (or NAME), repeatable: account=lab, "
                 "qos=high, constraint=a100.", "many"),
    LaunchOption("slurm_array_parallelism", "Slurm: jobs of one array running at once.", int, 256, low=1),
    LaunchOption("no_wait", "Slurm: return once the jobs are submitted; the same command later collects them.",
                 "flag", False),
)


@register
class Slurm(Launcher):
    """One Slurm job per run, through submitit (a job array per submission); docs/CLUSTER.md."""
    name, options, order = "slurm", OPTIONS, 10
    needs = "a Slurm cluster (tests/test_slurm.py starts one and compares its tables with local ones)"

    @classmethod
    def check(cls, settings):
        from cftrain.slurm import check_cluster  # noqa: PLC0415
        check_cluster(cls.slurm_settings(settings))

    @staticmethod
    def slurm_settings(settings: dict):
        from cftrain.slurm import SlurmSettings, parse_options, parse_time  # noqa: PLC0415
        time = settings.get("slurm_time")
        return SlurmSettings(settings.get("slurm_partition"), None if time is None else parse_time(time),
                             settings.get("slurm_gpus"), settings.get("slurm_cpus"), settings.get("slurm_mem"),
                             parse_options(settings.get("slurm_option") or ()),
                             settings.get("slurm_array_parallelism") or 256, wait=not settings.get("no_wait"))

    def where(self, runs):
        return "Slurm"

    def run(self, folder, jobs, args_list, on_done, on_progress=None):
        from cftrain.slurm import SlurmLauncher  # noqa: PLC0415
        SlurmLauncher(self.slurm_settings(self.settings), self.kind).run(folder, jobs, args_list, on_done)
