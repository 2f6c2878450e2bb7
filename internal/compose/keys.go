package compose

import "github.com/berth-sh/berth/internal/keytable"

// Support says how berth treats a key (package keytable).
type Support = keytable.Support

// The support levels.
const (
	Supported = keytable.Supported
	Partial   = keytable.Partial
	Ignored   = keytable.Ignored
	Rejected  = keytable.Rejected
)

// KeyRule is one row of the service support table.
type KeyRule struct {
	Key     string
	Support Support
	// How says what berth does with the key; for Ignored and Rejected keys
	// it is also the finding's message.
	How string
	// plan is the key's planner function: it reads the key (absent
	// included), validates its value as findings and records it in the
	// service's draft or machine template. nil for ignored and rejected
	// keys, resolvedAtLoad for keys the loader has already applied.
	plan func(*svcPlanner)
}

// resolvedAtLoad is the planner of keys compose-go applies while loading
// (env_file, extends, label_file, profiles, name): nothing is left to do.
func resolvedAtLoad(*svcPlanner) {}

// ServiceKeys is the support table for every key of a compose service
// (compose-spec as of compose-go v2.16). A test checks it covers every field
// of types.ServiceConfig, so a new compose key cannot slip through unlisted.
var ServiceKeys = []KeyRule{
	{"annotations", Ignored, "OCI annotations have no nspawn equivalent; recorded in berth's manifest only", nil},
	{"attach", Ignored, "berth does not attach to output; logs are in the journal (berth compose logs)", nil},
	{"blkio_config", Rejected, "block I/O weights and limits are not converted yet", nil},
	{"build", Partial, "berth cannot build images: with image: set, build: is ignored (warning) and the image is pulled; without image: it is an error", (*svcPlanner).planBuild},
	{"cap_add", Supported, "Capability= in the .nspawn file; ALL means every capability", (*svcPlanner).planCapAdd},
	{"cap_drop", Supported, "DropCapability= in the .nspawn file", (*svcPlanner).planCapDrop},
	{"cgroup", Rejected, "cgroup namespace mode is fixed by systemd-nspawn", nil},
	{"cgroup_parent", Rejected, "machines always run in machine.slice", nil},
	{"command", Supported, "replaces the image's Cmd", (*svcPlanner).planCommand},
	{"configs", Supported, "file, environment and content sources are copied to a root-only directory and bind-mounted read-only at the target (default /NAME)", (*svcPlanner).planConfigs},
	{"container_name", Partial, "added as a host name other services resolve; the machine keeps its project-scoped name so projects never collide", (*svcPlanner).planContainerName},
	{"cpu_count", Rejected, "Windows only", nil},
	{"cpu_percent", Rejected, "Windows only", nil},
	{"cpu_period", Rejected, "CFS period tuning is not converted; use cpus", nil},
	{"cpu_quota", Rejected, "CFS quota tuning is not converted; use cpus", nil},
	{"cpu_rt_period", Rejected, "real-time scheduling budgets are not converted", nil},
	{"cpu_rt_runtime", Rejected, "real-time scheduling budgets are not converted", nil},
	{"cpu_shares", Supported, "CPUWeight= (shares*100/1024, clamped to 1..10000)", (*svcPlanner).planCPUShares},
	{"cpus", Supported, "CPUQuota= (cpus*100%)", (*svcPlanner).planCPUs},
	{"cpuset", Supported, "AllowedCPUs=", (*svcPlanner).planCPUSet},
	{"credential_spec", Rejected, "Windows only", nil},
	{"depends_on", Supported, "Wants= and After= on the dependency's unit, and for a required one (the default) a check before start that it runs (not Requires=, which ties the dependent to its crash restarts); service_healthy waits for the -healthy unit, service_completed_successfully for a oneshot that must exit 0; restart: true adds PartOf=", (*svcPlanner).planDependsOn},
	{"deploy", Partial, "replicas, resources.limits (cpus, memory, pids), resources.reservations.memory, restart_policy and labels are converted; resources devices and generic_resources and mode: global are errors; placement, update_config, rollback_config and endpoint_mode are swarm-only (warning)", (*svcPlanner).planDeploy},
	{"develop", Ignored, "compose watch is not supported", nil},
	{"device_cgroup_rules", Rejected, "use devices: to name device nodes", nil},
	{"devices", Supported, "Bind= of the device node and DeviceAllow= with its permissions", (*svcPlanner).planDevices},
	{"dns", Supported, "nameserver lines of the generated resolv.conf, bind-mounted read-only", (*svcPlanner).planDNS},
	{"dns_opt", Supported, "options line of the generated resolv.conf", (*svcPlanner).planDNSOpt},
	{"dns_search", Supported, "search line of the generated resolv.conf", (*svcPlanner).planDNSSearch},
	{"dockerfile", Partial, "as build:", (*svcPlanner).planDockerfile},
	{"domainname", Rejected, "systemd-nspawn cannot set the NIS domain name", nil},
	{"entrypoint", Supported, "replaces the image's Entrypoint", (*svcPlanner).planEntrypoint},
	{"env_file", Supported, "read at load time into environment (the files are not referenced by the units); format: raw is read as docker run --env-file reads it", resolvedAtLoad},
	{"environment", Supported, "berth-init --env: set over the image's Env when the machine starts", (*svcPlanner).planEnvironment},
	{"expose", Supported, "recorded in the manifest; like docker, it publishes nothing", (*svcPlanner).planExpose},
	{"extends", Supported, "resolved at load time", resolvedAtLoad},
	{"external_links", Rejected, "links to containers outside the project are not supported", nil},
	{"extra_hosts", Supported, "lines of the generated hosts file", (*svcPlanner).planExtraHosts},
	{"gpus", Rejected, "GPU requests are not supported", nil},
	{"group_add", Rejected, "supplementary groups are not converted yet", nil},
	{"healthcheck", Supported, "a host-side timer runs the test inside the machine (berth compose _health); state is in the -healthy unit and berth compose ps", (*svcPlanner).planHealthcheck},
	{"hostname", Supported, "Hostname= in the .nspawn file", (*svcPlanner).planHostname},
	{"image", Supported, "the machine's image, pulled into berth's store; the machine reads its config when it starts, so convert works before it is pulled (its VOLUMEs and HEALTHCHECK are then missing, with a warning)", (*svcPlanner).planImage},
	{"init", Supported, "berth-init runs as PID 1 and reaps zombies", (*svcPlanner).planInit},
	{"ipc", Partial, "private and shareable are what nspawn gives; host, service: and container: are errors", (*svcPlanner).planIPC},
	{"isolation", Partial, "default is accepted; other values (Windows) are errors", (*svcPlanner).planIsolation},
	{"label_file", Supported, "read at load time into labels", resolvedAtLoad},
	{"labels", Supported, "recorded in berth's manifest", (*svcPlanner).planLabels},
	{"links", Partial, "link aliases become host names in the generated hosts file; every service already reaches every other on shared networks", (*svcPlanner).planLinks},
	{"log_driver", Partial, "as logging.driver", (*svcPlanner).planLogDriver},
	{"log_opt", Ignored, "journald options are set on the host, not per service", nil},
	{"logging", Partial, "output goes to the journal; driver journald, json-file, local or none are accepted (others warn) and options are ignored (warning)", (*svcPlanner).planLogging},
	{"mac_address", Rejected, "fixed MAC addresses are not supported", nil},
	{"mem_limit", Supported, "MemoryMax=", (*svcPlanner).planMemLimit},
	{"mem_reservation", Supported, "MemoryLow=", (*svcPlanner).planMemReservation},
	{"mem_swappiness", Rejected, "cgroup v2 has no per-group swappiness", nil},
	{"memswap_limit", Supported, "MemorySwapMax= (memswap_limit - mem_limit; -1 is infinity)", (*svcPlanner).planMemswapLimit},
	{"models", Rejected, "AI models are not supported", nil},
	{"name", Supported, "the service's name (set by the loader)", resolvedAtLoad},
	{"net", Partial, "as network_mode", (*svcPlanner).planNet},
	{"network_mode", Partial, "bridge (default), host and none are supported; service: and container: are errors", (*svcPlanner).planNetworkMode},
	{"networks", Partial, "each network is a bridge; aliases, ipv4_address, priority, gw_priority, interface_name and use_service_name_alias are honoured; ipv6_address, link_local_ips, mac_address and driver_opts are errors", (*svcPlanner).planServiceNetworks},
	{"oom_kill_disable", Rejected, "not available on cgroup v2", nil},
	{"oom_score_adj", Supported, "OOMScoreAdjust= in the .nspawn file", (*svcPlanner).planOOMScoreAdj},
	{"pid", Partial, "unset is a private PID namespace; host, service: and container: are errors", (*svcPlanner).planPID},
	{"pids_limit", Supported, "TasksMax=", (*svcPlanner).planPidsLimit},
	{"platform", Ignored, "berth pulls the host's platform", nil},
	{"ports", Supported, "a socket unit per host port (ListenStream=/ListenDatagram= on host_ip, 127.0.0.1 included) activating systemd-socket-proxyd (tcp) or berth compose _udp-proxy (udp) to the machine's address; ranges expand; a port without a host port is an error", (*svcPlanner).planServicePorts},
	{"post_start", Rejected, "lifecycle hooks are not supported yet", nil},
	{"pre_start", Rejected, "lifecycle hooks are not supported yet", nil},
	{"pre_stop", Rejected, "lifecycle hooks are not supported yet", nil},
	{"privileged", Partial, "every capability (Capability=all) and no system-call filter; devices still need devices:", (*svcPlanner).planPrivileged},
	{"profiles", Supported, "resolved at load time (--profile, COMPOSE_PROFILES)", resolvedAtLoad},
	{"provider", Rejected, "provider services are not supported", nil},
	{"pull_policy", Ignored, "berth compose up pulls images that are missing", nil},
	{"pull_refresh_after", Ignored, "berth compose up pulls images that are missing", nil},
	{"read_only", Supported, "ReadOnly=yes in the .nspawn file", (*svcPlanner).planReadOnly},
	{"restart", Supported, "Restart= of the machine's unit (no, always, on-failure[:N] with StartLimitBurst=, unless-stopped)", (*svcPlanner).planRestart},
	{"runtime", Rejected, "the runtime is always systemd-nspawn", nil},
	{"scale", Supported, "N machines NAME-1..NAME-N", (*svcPlanner).planScale},
	{"secrets", Supported, "file, environment and content sources are copied to a root-only directory and bind-mounted read-only at /run/secrets/NAME or the target; mode is honoured", (*svcPlanner).planSecrets},
	{"security_opt", Partial, "no-new-privileges is NoNewPrivileges=yes; other options are errors", (*svcPlanner).planSecurityOpt},
	{"shm_size", Supported, "size of the /dev/shm tmpfs", (*svcPlanner).planShmSize},
	{"stdin_open", Ignored, "services run without a terminal under systemd; use berth compose exec", nil},
	{"stop_grace_period", Supported, "TimeoutStopSec=", (*svcPlanner).planStopGracePeriod},
	{"stop_signal", Supported, "berth-init --stop-signal: what berth-init sends the command when the machine stops (wins over the image's STOPSIGNAL)", (*svcPlanner).planStopSignal},
	{"storage_opt", Rejected, "storage driver options do not apply to directory machines", nil},
	{"sysctls", Partial, "net.* keys are set in the machine's network namespace by berth compose _netns-up; others are errors (nspawn shares the host kernel's)", (*svcPlanner).planSysctls},
	{"tmpfs", Supported, "TemporaryFileSystem= in the .nspawn file", (*svcPlanner).planTmpfs},
	{"tty", Ignored, "services run without a terminal under systemd; use berth compose exec", nil},
	{"ulimits", Supported, "Limit*= in the .nspawn file", (*svcPlanner).planUlimits},
	{"umask", Rejected, "a process umask is not converted yet", nil},
	{"use_api_socket", Rejected, "there is no Docker API socket", nil},
	{"user", Supported, "berth-init switches to it before running the command (uid[:gid] or names from the machine's own /etc/passwd and /etc/group)", (*svcPlanner).planUser},
	{"userns_mode", Rejected, "user namespace modes are not converted", nil},
	{"uts", Rejected, "the machine always has its own host name", nil},
	{"volume_driver", Rejected, "only local volumes exist", nil},
	{"volumes", Supported, "named volumes are directories under the berth root per project (filled from the image when new, unless nocopy), binds are resolved relative to the project (created when missing unless create_host_path: false), anonymous volumes are per-instance directories; Bind=/BindReadOnly=/TemporaryFileSystem= in the .nspawn file; bind propagation and recursive other than the defaults are errors", (*svcPlanner).planServiceVolumes},
	{"volumes_from", Rejected, "sharing another service's volumes is not supported yet", nil},
	{"working_dir", Supported, "berth-init --workdir (created if missing, as docker does)", (*svcPlanner).planWorkingDir},
}

// TopKeyRule is one row of the top-level support table. Keys of declared
// objects are written with "*" for the object's name: networks.*.driver.
type TopKeyRule struct {
	Key     string
	Support Support
	How     string
	// check validates the values of a partially supported object key
	// (name is the object's key); nil when planning the object covers it.
	check func(pl *planner, name string)
}

// TopKeys is the support table for the project's top-level keys and the
// keys of the objects they declare. A test checks it covers every field of
// compose-go's project, network, volume, secret and config types.
var TopKeys = []TopKeyRule{
	{"name", Supported, "the project name, after -p and COMPOSE_PROJECT_NAME", nil},
	{"version", Ignored, "obsolete; ignored as docker compose does", nil},
	{"include", Supported, "resolved at load time", nil},
	{"services", Supported, "one machine per instance", nil},
	{"networks", Supported, "each network is a bridge named br-<hash>", nil},
	{"networks.*.name", Partial, "the default (PROJECT_KEY) or, for external networks, the host bridge to join; a name of its own on a project network (shared across projects under docker) is an error", nil},
	{"networks.*.enable_ipv4", Partial, "true (default) is supported; false is an error", nil},
	{"networks.*.driver", Partial, "bridge (default) is supported; other drivers are errors", checkNetworkDriver},
	{"networks.*.driver_opts", Rejected, "bridge driver options are not converted", nil},
	{"networks.*.ipam", Partial, "config[].subnet, gateway, ip_range and aux_addresses are honoured; driver and options other than default, and more than one pool, are errors", checkNetworkIPAM},
	{"networks.*.internal", Supported, "the bridge gets no forwarding to the outside", nil},
	{"networks.*.enable_ipv6", Partial, "false is accepted; true is an error: IPv6 networks are not supported yet", checkNetworkIPv6},
	{"networks.*.external", Partial, "an existing host bridge of that name is joined; berth neither creates nor removes it", nil},
	{"networks.*.attachable", Ignored, "swarm only; ignored", nil},
	{"networks.*.labels", Supported, "recorded in berth's manifest", nil},
	{"volumes", Supported, "named volumes are directories under the berth root per project", nil},
	{"volumes.*.name", Supported, "a name of its own makes the volume shared by every project naming it, as under docker: ROOT/volumes/NAME, created when missing", nil},
	{"volumes.*.driver", Partial, "local (default) is supported; other drivers are errors", checkVolumeDriver},
	{"volumes.*.driver_opts", Rejected, "volume driver options are not converted", nil},
	{"volumes.*.external", Supported, "the directory is shared across projects and never removed by berth", nil},
	{"volumes.*.labels", Supported, "recorded in berth's manifest", nil},
	{"secrets", Supported, "file, environment and content sources", nil},
	{"secrets.*.name", Supported, "the secret's name; the file is per service and reference", nil},
	{"secrets.*.file", Supported, "copied at install time into the project's root-only directory", nil},
	{"secrets.*.environment", Supported, "the variable's value, read at load time", nil},
	{"secrets.*.content", Supported, "the inline content", nil},
	{"secrets.*.external", Rejected, "external secrets exist only in swarm", nil},
	{"secrets.*.labels", Ignored, "secret labels are swarm metadata; ignored", nil},
	{"secrets.*.driver", Rejected, "secret drivers are swarm only", nil},
	{"secrets.*.driver_opts", Rejected, "secret driver options are swarm only", nil},
	{"secrets.*.template_driver", Rejected, "secret templates are not supported", nil},
	{"configs", Supported, "file, environment and content sources", nil},
	{"configs.*.name", Supported, "the config's name; the file is per service and reference", nil},
	{"configs.*.file", Supported, "copied at install time into the project's root-only directory", nil},
	{"configs.*.environment", Supported, "the variable's value, read at load time", nil},
	{"configs.*.content", Supported, "the inline content", nil},
	{"configs.*.external", Rejected, "external configs exist only in swarm", nil},
	{"configs.*.labels", Ignored, "config labels are swarm metadata; ignored", nil},
	{"configs.*.driver", Rejected, "config drivers are swarm only", nil},
	{"configs.*.driver_opts", Rejected, "config driver options are swarm only", nil},
	{"configs.*.template_driver", Rejected, "config templates are not supported", nil},
	{"models", Rejected, "AI models are not supported", nil},
	{"jobs", Rejected, "run-to-completion jobs are not supported yet", nil},
	{"x-*", Ignored, "extension fields are for the user's own tooling; ignored without a warning by definition", nil},
}

func serviceRule(key string) (KeyRule, bool) {
	for _, r := range ServiceKeys {
		if r.Key == key {
			return r, true
		}
	}
	return KeyRule{}, false
}

func topRule(key string) (TopKeyRule, bool) {
	for _, r := range TopKeys {
		if r.Key == key {
			return r, true
		}
	}
	return TopKeyRule{}, false
}
