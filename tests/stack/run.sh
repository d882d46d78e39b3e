# shellcheck shell=bash
# Run half of the local stack: starts the built components on loopback, each on a free
# port chosen at `up`, with all state under $STACK_DIR; sourced by tests/stack/stack.
#
#   $STACK_DIR/ports.env     the ports of this stack (two stacks = two directories)
#   $STACK_DIR/pki/          CA, API server serving cert, admin client cert, SA keys
#   $STACK_DIR/kubeconfig    admin (system:masters) kubeconfig for kubectl and tests
#   $STACK_DIR/logs/*.log    one log per component; `up` prints the tail on failure
#   $STACK_DIR/pids/*.pid    one pid per component

RUN_COMPONENTS="etcd kube-apiserver webhook alertmanager prometheus otelcol"
# How long `up` waits for one component to answer its health check. The API server is the
# slowest (it installs its bootstrap objects); 60 s is ample on 2 cores.
HEALTH_TIMEOUT_SECONDS=${SEINODE_STACK_HEALTH_TIMEOUT:-60}
SERVICE_CIDR=10.0.0.0/24

# free_ports N: N different free loopback ports, one per line (tests/harness/seistack.py).
free_ports() {
  python3 "$REPO_ROOT/tests/harness/seistack.py" free-port "$1"
}

# write_ports WHAT NAME...: a free loopback port for each NAME, as NAME=PORT lines of a new
# $STACK_DIR/ports.env (WHAT, stack or fleet, names it in its first line).
write_ports() {
  local what=$1 text ports i name
  shift
  text=$(free_ports $#) || die "could not pick free ports (python3 tests/harness/seistack.py free-port)"
  mapfile -t ports <<<"$text"
  ((${#ports[@]} == $#)) || die "picked ${#ports[@]} free ports, wanted $#"
  {
    echo "# Ports of the $what in $STACK_DIR, chosen free at '$what up'."
    i=0
    for name in "$@"; do
      echo "$name=${ports[$i]}"
      i=$((i + 1))
    done
  } >"$STACK_DIR/ports.env"
}

load_ports() {
  [[ -f "$STACK_DIR/ports.env" ]] || die "no stack in $STACK_DIR: run 'tests/stack/stack up' first"
  # shellcheck source=/dev/null
  source "$STACK_DIR/ports.env"
}

write_pki() {
  local pki="$STACK_DIR/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 7 \
      -subj "/CN=seinode-stack-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,IP:10.0.0.1\nextendedKeyUsage=serverAuth\n' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
      -subj "/O=system:masters/CN=stack-admin" 2>/dev/null
    # Extensions make it an X.509 v3 certificate: rustls (the watcher's TLS) refuses v1.
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
      -extfile admin.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  ) || die "could not create certificates with openssl in $pki"
}

write_kubeconfig() {
  local pki="$STACK_DIR/pki"
  cat >"$STACK_DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: seinode-stack
    cluster:
      server: https://127.0.0.1:$APISERVER_PORT
      certificate-authority: $pki/ca.crt
users:
  - name: stack-admin
    user:
      client-certificate: $pki/admin.crt
      client-key: $pki/admin.key
contexts:
  - name: seinode-stack
    context: {cluster: seinode-stack, user: stack-admin}
current-context: seinode-stack
EOF
}

write_configs() {
  local rules_dir="$STACK_DIR/prometheus/rules"
  mkdir -p "$rules_dir" "$STACK_DIR/prometheus/data" "$STACK_DIR/alertmanager/data" "$STACK_DIR/webhook"
  stack_rules "$rules_dir"
  cat >"$STACK_DIR/prometheus/prometheus.yml" <<EOF
# Local stack only: short intervals so tests see rule state changes within seconds.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $rules_dir/*.yaml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$ALERTMANAGER_PORT"]
scrape_configs:
  - job_name: otel-collector
    static_configs:
      - targets: ["127.0.0.1:$COLLECTOR_METRICS_PORT"]
# Prometheus' own OTLP receiver (--web.enable-otlp-receiver), for the watcher with
# --otlp-receiver prometheus (docs/deploy.md, "Straight into Prometheus"): names as the
# watcher writes them, as the collector's translation_strategy keeps them.
otlp:
  translation_strategy: UnderscoreEscapingWithoutSuffixes
EOF
  write_alertmanager_config
}

# The Alertmanager of a stack (or of a fleet): every notification at once to the webhook.
write_alertmanager_config() {
  mkdir -p "$STACK_DIR/alertmanager/data" "$STACK_DIR/webhook"
  cat >"$STACK_DIR/alertmanager/alertmanager.yml" <<EOF
# Local stack only: notifications go at once to the stack's webhook receiver.
route:
  receiver: webhook
  group_by: [alertname, cluster, namespace, name]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: webhook
    webhook_configs:
      - url: http://127.0.0.1:$WEBHOOK_PORT/alerts
        send_resolved: true
EOF
}

# stack_rules DIR: the shipped rules files (deploy/prometheus/*.rules.yaml), or with
# `up --rule-for DUR` copies whose `for:` durations are shortened (for the demo, and
# labelled demo_for in the copies).
stack_rules() {
  local dir=$1 src name
  rm -f "$dir"/*.yaml
  for src in "$REPO_ROOT"/deploy/prometheus/*.rules.yaml; do
    name=$(basename "$src" .rules.yaml)
    if [[ -n "${RULE_FOR:-}" ]]; then
      {
        echo "# DEMO COPY of deploy/prometheus/$name.rules.yaml: every 'for:' and 'keep_firing_for:' is shortened to $RULE_FOR."
        sed -e "s/^\(\s*\)for: .*/\1for: $RULE_FOR/" \
          -e "s/^\(\s*\)keep_firing_for: .*/\1keep_firing_for: $RULE_FOR/" \
          -e "s/^\(\s*\)severity: \(.*\)/\1severity: \2\n\1demo_for: \"$RULE_FOR\"/" "$src"
      } >"$dir/$name.demo.yaml"
    else
      cp "$src" "$dir/$name.rules.yaml"
    fi
  done
}

# start_component NAME: starts one component in the background with its log and pid file.
start_component() {
  load_ports
  local name=$1 log="$STACK_DIR/logs/$1.log" cmd=()
  mkdir -p "$STACK_DIR/logs" "$STACK_DIR/pids"
  if [[ -f "$STACK_DIR/pids/$name.pid" ]] && kill -0 "$(cat "$STACK_DIR/pids/$name.pid")" 2>/dev/null; then
    log "$name is already running"
    return 0
  fi
  case $name in
    etcd)
      cmd=("$(bin_path etcd)" --name stack --data-dir "$STACK_DIR/etcd"
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT"
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT"
        --initial-cluster "stack=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn)
      ;;
    kube-apiserver)
      local pki="$STACK_DIR/pki"
      cmd=("$(bin_path kube-apiserver)" --etcd-servers "http://127.0.0.1:$ETCD_PORT"
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT"
        --cert-dir "$pki" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key"
        --client-ca-file "$pki/ca.crt" --authorization-mode RBAC
        --service-account-issuer https://kubernetes.default.svc.cluster.local
        --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key"
        --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true
        # As envtest: a loopback advertise address cannot back the kubernetes Service.
        --endpoint-reconciler-type none
        # As envtest: without a controller manager no default ServiceAccount exists, so the
        # admission plugin that requires one would reject every Pod template.
        --disable-admission-plugins ServiceAccount)
      # Fault tests restart the API server with a feature switched off (e.g. WatchList=false).
      [[ -n ${SEINODE_APISERVER_FEATURE_GATES:-} ]] && cmd+=(--feature-gates "$SEINODE_APISERVER_FEATURE_GATES")
      ;;
    otelcol)
      cmd=(env PROMETHEUS_REMOTE_WRITE_URL="http://127.0.0.1:$PROMETHEUS_PORT/api/v1/write"
        COLLECTOR_OTLP_GRPC_ENDPOINT="127.0.0.1:$OTLP_GRPC_PORT" COLLECTOR_OTLP_HTTP_ENDPOINT="127.0.0.1:$OTLP_HTTP_PORT"
        COLLECTOR_HEALTH_ENDPOINT="127.0.0.1:$COLLECTOR_HEALTH_PORT"
        COLLECTOR_METRICS_HOST=127.0.0.1 COLLECTOR_METRICS_PORT="$COLLECTOR_METRICS_PORT"
        GOMEMLIMIT="${GOMEMLIMIT:-460MiB}"
        "$(bin_path otelcol)" --config "$REPO_ROOT/otel-config/collector.yaml")
      ;;
    prometheus)
      cmd=("$(bin_path prometheus)" --config.file "$STACK_DIR/prometheus/prometheus.yml"
        --storage.tsdb.path "$STACK_DIR/prometheus/data" --web.listen-address "127.0.0.1:$PROMETHEUS_PORT"
        --web.enable-remote-write-receiver --web.enable-otlp-receiver --web.enable-lifecycle --log.level warn)
      ;;
    alertmanager)
      cmd=("$(bin_path alertmanager)" --config.file "$STACK_DIR/alertmanager/alertmanager.yml"
        --storage.path "$STACK_DIR/alertmanager/data" --web.listen-address "127.0.0.1:$ALERTMANAGER_PORT"
        --cluster.listen-address "" --log.level warn)
      ;;
    webhook)
      cmd=(python3 "$STACK_ROOT/webhook_receiver.py" --port "$WEBHOOK_PORT" --log "$STACK_DIR/webhook/notifications.jsonl")
      ;;
    *)
      # The fleet's own components (fleet.sh), in a directory that holds a fleet.
      [[ -n ${FLEET_CLUSTERS:-} ]] || die "unknown component '$name' (one of: $RUN_COMPONENTS)"
      fleet_command "$name"
      ;;
  esac
  [[ $name == webhook || -x "${cmd[0]}" || ${cmd[0]} == env ]] || die "$name is not built: run 'tests/stack/stack build'"
  echo "--- start $(date -u +%FT%TZ)" >>"$log"
  setsid "${cmd[@]}" >>"$log" 2>&1 </dev/null &
  echo $! >"$STACK_DIR/pids/$name.pid"
}

# health_check NAME: what `up` polls until it succeeds (an HTTP 200 from the component).
health_check() {
  case $1 in
    etcd) curl -fsS "http://127.0.0.1:$ETCD_PORT/health" ;;
    kube-apiserver) curl -fsS --cacert "$STACK_DIR/pki/ca.crt" --cert "$STACK_DIR/pki/admin.crt" \
      --key "$STACK_DIR/pki/admin.key" "https://127.0.0.1:$APISERVER_PORT/readyz" ;;
    otelcol) curl -fsS "http://127.0.0.1:$COLLECTOR_HEALTH_PORT/" ;;
    prometheus) curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" ;;
    alertmanager) curl -fsS "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" ;;
    webhook) curl -fsS "http://127.0.0.1:$WEBHOOK_PORT/healthz" ;;
    *) fleet_health_check "$1" ;;
  esac
}

wait_healthy() {
  load_ports
  local name=$1 deadline=$((SECONDS + HEALTH_TIMEOUT_SECONDS))
  local pid
  pid=$(cat "$STACK_DIR/pids/$name.pid" 2>/dev/null || echo 0)
  until health_check "$name" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 25 "$STACK_DIR/logs/$name.log" >&2
      die "$name exited during start-up (log above, full log: $STACK_DIR/logs/$name.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 25 "$STACK_DIR/logs/$name.log" >&2
      die "$name did not become healthy within ${HEALTH_TIMEOUT_SECONDS}s (log above, full log: $STACK_DIR/logs/$name.log)"
    fi
    sleep 0.3
  done
  log "$name healthy"
}

stop_component() {
  local name=$1 pidfile="$STACK_DIR/pids/$1.pid" pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# The components `up` starts: all of them, or with `up --api-only` a second cluster's
# etcd and API server only (with the sei.io CRDs), whose watcher writes to another stack's
# collector, Prometheus and Alertmanager (tests/it/cluster_identity.rs).
API_ONLY_COMPONENTS="etcd kube-apiserver"

stack_up() {
  RULE_FOR=""
  local components=$RUN_COMPONENTS
  while [[ $# -gt 0 ]]; do
    case $1 in
      --rule-for) RULE_FOR=${2:?--rule-for needs a duration such as 30s}; shift 2 ;;
      --api-only) components=$API_ONLY_COMPONENTS; shift ;;
      *) die "up: unknown option '$1' (known: --rule-for DURATION, --api-only)" ;;
    esac
  done
  command -v openssl >/dev/null || die "openssl is needed to create the stack's certificates (apt-get install openssl)"
  command -v curl >/dev/null || die "curl is needed for health checks (apt-get install curl)"
  local comp
  for comp in etcd kube-apiserver kubectl otelcol prometheus alertmanager; do
    [[ -x "$(bin_path "$comp")" ]] || die "$comp is not built: run 'tests/stack/stack build' first"
  done
  if [[ -f "$STACK_DIR/ports.env" ]]; then
    log "a stack already exists in $STACK_DIR; taking it down first"
    stack_down
  fi
  mkdir -p "$STACK_DIR"
  write_ports stack ETCD_PORT ETCD_PEER_PORT APISERVER_PORT OTLP_GRPC_PORT OTLP_HTTP_PORT COLLECTOR_HEALTH_PORT \
    COLLECTOR_METRICS_PORT PROMETHEUS_PORT ALERTMANAGER_PORT WEBHOOK_PORT
  {
    echo "RULE_FOR=$RULE_FOR"
    echo "STACK_COMPONENTS=\"$components\""
  } >>"$STACK_DIR/ports.env"
  load_ports
  write_pki
  write_kubeconfig
  write_configs
  for comp in $components; do
    start_component "$comp"
    wait_healthy "$comp"
  done
  install_crd
  log "stack up in $STACK_DIR; run 'eval \"\$(tests/stack/stack env)\"' to use it"
}

# The four sei.io CRDs of sei-k8s-controller at 2d670ad (SeiNode with the seed's #258-era
# sidecar-TLS fields added; see tests/fixtures/seinode-crd.yaml), each waited for until
# Established, so that tests can create objects of every kind at once.
STACK_CRDS="seinode-crd.yaml:seinodes.sei.io sei.io_seinetworks.yaml:seinetworks.sei.io
sei.io_seinodetasks.yaml:seinodetasks.sei.io sei.io_seinodetaskworkflows.yaml:seinodetaskworkflows.sei.io"

install_crd() {
  local kubectl=("$(bin_path kubectl)" --kubeconfig "$STACK_DIR/kubeconfig")
  local entry files=() names=() name
  for entry in $STACK_CRDS; do
    files+=(-f "$REPO_ROOT/tests/fixtures/${entry%%:*}")
    names+=("${entry#*:}")
  done
  "${kubectl[@]}" apply "${files[@]}" >/dev/null ||
    die "could not install the sei.io CRDs (${names[*]})"
  for name in "${names[@]}"; do
    "${kubectl[@]}" wait --for condition=Established --timeout 30s "crd/$name" >/dev/null ||
      die "the CRD $name did not become Established"
  done
  log "sei.io CRDs installed: ${names[*]}"
}

stack_down() {
  if [[ ! -d $STACK_DIR ]]; then
    log "no stack in $STACK_DIR"
    return 0
  fi
  local comp reversed=""
  for comp in $RUN_COMPONENTS; do reversed="$comp $reversed"; done
  for comp in $reversed; do stop_component "$comp"; done
  # Safety: only ever remove a directory that holds a stack.
  if [[ -f "$STACK_DIR/ports.env" ]]; then rm -rf "$STACK_DIR"; fi
  log "stack in $STACK_DIR is down"
}

stack_status() {
  load_ports
  local comp pid state
  for comp in ${STACK_COMPONENTS:-$RUN_COMPONENTS}; do
    pid=$(cat "$STACK_DIR/pids/$comp.pid" 2>/dev/null || echo -)
    if health_check "$comp" >/dev/null 2>&1; then state=healthy
    elif [[ $pid != - ]] && kill -0 "$pid" 2>/dev/null; then state=unhealthy
    else state=stopped; fi
    printf '%-15s pid %-8s %s\n' "$comp" "$pid" "$state"
  done
}

stack_env() {
  load_ports
  cat <<EOF
export SEINODE_STACK_DIR=$STACK_DIR
export KUBECONFIG=$STACK_DIR/kubeconfig
export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$OTLP_GRPC_PORT
export OTLP_HTTP_ENDPOINT=http://127.0.0.1:$OTLP_HTTP_PORT/v1/metrics
export PROMETHEUS_OTLP_ENDPOINT=http://127.0.0.1:$PROMETHEUS_PORT/api/v1/otlp/v1/metrics
export PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT
export ALERTMANAGER_URL=http://127.0.0.1:$ALERTMANAGER_PORT
export WEBHOOK_URL=http://127.0.0.1:$WEBHOOK_PORT
export WEBHOOK_LOG=$STACK_DIR/webhook/notifications.jsonl
export COLLECTOR_METRICS_URL=http://127.0.0.1:$COLLECTOR_METRICS_PORT/metrics
export PROMTOOL=$(bin_path promtool)
export OTELCOL=$(bin_path otelcol)
export SEINODE_STACK=$STACK_ROOT/stack
# The pinned kubectl (same version as the API server) first on PATH.
export PATH=$(dirname "$(bin_path kubectl)"):\$PATH
EOF
}
