package main

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/spinecdp/spine/sinks/httpapi"
)

// The deployment files (deploy/) are configuration of this binary, so they
// are checked against it: every setting they use must be a real flag of
// `spine run` and parse, and the ports, topics and addresses they repeat in
// several places must agree. A renamed flag or a moved port then fails
// here instead of in someone's cluster.

const deployDir = "../../deploy"

// nonFlagEnv are SPINE_* variables read outside the flag set.
var nonFlagEnv = map[string]bool{
	"SPINE_LOG_LEVEL": true, // main.go: debug logging
	"SPINE_CONFIG":    true, // the --config flag itself
}

// runFlagSet returns the flags of `spine run`, without --config (a config
// file naming another config file would be meaningless).
func runFlagSet(t *testing.T) map[string]*flag.Flag {
	t.Helper()
	fs, _ := runFlags("run")
	out := map[string]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" {
			out[f.Name] = f
		}
	})
	return out
}

// checkEnvName fails unless name is the variable of a run flag (or one of
// the few others the binary reads).
func checkEnvName(t *testing.T, where, name string) {
	t.Helper()
	if !strings.HasPrefix(name, "SPINE_") || nonFlagEnv[name] {
		return
	}
	for fname := range runFlagSet(t) {
		if envName(fname) == name {
			return
		}
	}
	t.Errorf("%s: %s is not the variable of any `spine run` flag", where, name)
}

// parseRun parses args and env exactly as `spine run` does.
func parseRun(t *testing.T, where string, args []string, env map[string]string) *runOptions {
	t.Helper()
	fs, o := runFlags("run")
	if err := fs.parse(args, func(k string) string { return env[k] }); err != nil {
		t.Errorf("%s: spine run would refuse it: %v", where, err)
	}
	return o
}

func readDeploy(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func port(t *testing.T, where, hostport string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(hostport)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("%s: %q is not host:port", where, hostport)
	}
	return host, n
}

func TestDeployExampleConfig(t *testing.T) {
	const rel = "spine.example.yaml"
	var doc yaml.Node
	if err := yaml.Unmarshal(readDeploy(t, rel), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("%s: want one mapping of flag names", rel)
	}
	flags := runFlagSet(t)
	m := doc.Content[0]
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		seen[k.Value] = true
		f, ok := flags[k.Value]
		if !ok {
			t.Errorf("%s: %q is not a flag of `spine run`", rel, k.Value)
			continue
		}
		if strings.TrimSpace(k.HeadComment) == "" {
			t.Errorf("%s: %s has no comment; document every setting", rel, k.Value)
		}
		var val any
		if err := v.Decode(&val); err != nil {
			t.Fatal(err)
		}
		// The example shows the defaults, so it is also their reference.
		if got := yamlString(val); got != f.DefValue {
			t.Errorf("%s: %s is %q but the flag's default is %q", rel, k.Value, got, f.DefValue)
		}
	}
	for name := range flags {
		if !seen[name] {
			t.Errorf("%s: flag --%s of `spine run` is missing", rel, name)
		}
	}
	parseRun(t, rel, []string{"--config", filepath.Join(deployDir, rel)}, nil)
}

// compose is the part of a compose file the checks read.
type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     any               `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Expose      []string          `yaml:"expose"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

// composeValue resolves compose's ${VAR:-default} and ${VAR:?message} the
// way an operator's environment would: with the default, or with a
// placeholder shaped like the flag's value.
var composeVar = regexp.MustCompile(`\$\{([A-Z_]+)(:?[-?])([^}]*)\}`)

func composeValue(v string) string {
	return composeVar.ReplaceAllStringFunc(v, func(s string) string {
		m := composeVar.FindStringSubmatch(s)
		if strings.HasSuffix(m[2], "-") {
			return m[3]
		}
		return "placeholder-secret-0123456789:read+write+admin"
	})
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	var c compose
	if err := yaml.Unmarshal(readDeploy(t, "compose/docker-compose.yml"), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

type grafanaDatasources struct {
	Datasources []struct {
		Name, UID, Type string
		JSONData        struct {
			Host            string `yaml:"host"`
			Port            int    `yaml:"port"`
			Protocol        string `yaml:"protocol"`
			DefaultDatabase string `yaml:"defaultDatabase"`
		} `yaml:"jsonData"`
		URL string `yaml:"url"`
	} `yaml:"datasources"`
}

func loadDatasources(t *testing.T) grafanaDatasources {
	t.Helper()
	var ds grafanaDatasources
	if err := yaml.Unmarshal(readDeploy(t, "grafana/provisioning/datasources/spine.yaml"), &ds); err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestDeployCompose(t *testing.T) {
	const rel = "compose/docker-compose.yml"
	c := loadCompose(t)
	spine, ok := c.Services["spine"]
	if !ok {
		t.Fatalf("%s: no spine service", rel)
	}
	for name, svc := range c.Services {
		if name == "spine-replica" {
			continue // spine replica's flags, checked below
		}
		for k := range svc.Environment {
			checkEnvName(t, rel+": service "+name, k)
		}
	}
	if cmd, _ := spine.Command.([]any); len(cmd) == 0 || cmd[0] != "run" {
		t.Errorf("%s: spine's command = %v, want run", rel, spine.Command)
	}
	env := map[string]string{}
	for k, v := range spine.Environment {
		env[k] = composeValue(v)
	}
	o := parseRun(t, rel, nil, env)

	// The API port: --http, the published container port, the health
	// check and Prometheus' scrape target.
	_, httpPort := port(t, rel+": SPINE_HTTP", o.HTTP)
	published := false
	for _, p := range spine.Ports {
		parts := strings.Split(p, ":")
		if parts[len(parts)-1] == strconv.Itoa(httpPort) {
			published = true
		}
	}
	if !published {
		t.Errorf("%s: spine publishes %v, none of them the --http port %d", rel, spine.Ports, httpPort)
	}
	if hc := strings.Join(spine.Healthcheck.Test, " "); !strings.Contains(hc, ":"+strconv.Itoa(httpPort)+"/readyz") {
		t.Errorf("%s: spine's health check %q does not ask /readyz on port %d", rel, hc, httpPort)
	}
	prom := string(readDeploy(t, "compose/prometheus.yml"))
	if !strings.Contains(prom, `"spine:`+strconv.Itoa(httpPort)+`"`) {
		t.Errorf("compose/prometheus.yml does not scrape spine:%d", httpPort)
	}

	// The lookup replica: its settings parse as spine replica's, it reads
	// the engine's profile stream from the same brokers, and its port is
	// published, health-checked and scraped.
	if rep, ok := c.Services["spine-replica"]; !ok {
		t.Errorf("%s: no spine-replica service", rel)
	} else {
		if cmd, _ := rep.Command.([]any); len(cmd) == 0 || cmd[0] != "replica" {
			t.Errorf("%s: spine-replica's command = %v, want replica", rel, rep.Command)
		}
		if rep.Image != spine.Image {
			t.Errorf("%s: spine-replica runs image %q, spine %q", rel, rep.Image, spine.Image)
		}
		renv := map[string]string{}
		for k, v := range rep.Environment {
			renv[k] = composeValue(v)
		}
		fs, ro := replicaFlags()
		for k := range renv {
			if f := flagOfEnv(k); strings.HasPrefix(k, "SPINE_") && !nonFlagEnv[k] && (fs.Lookup(f) == nil || envName(f) != k) {
				t.Errorf("%s: service spine-replica: %s is not the variable of any `spine replica` flag", rel, k)
			}
		}
		if err := fs.parse(nil, func(k string) string { return renv[k] }); err != nil {
			t.Fatalf("%s: spine replica would refuse its settings: %v", rel, err)
		}
		if ro.MaxMB < 1 {
			t.Errorf("%s: spine-replica SPINE_MAX_MB %d: spine replica wants at least 1", rel, ro.MaxMB)
		}
		if toks, err := httpapi.ParseTokens(ro.Tokens); err != nil {
			t.Errorf("%s: spine-replica's tokens: %v", rel, err)
		} else if !slices.ContainsFunc(toks, func(tk httpapi.Token) bool { return slices.Contains(tk.Scopes, httpapi.ScopeRead) }) {
			t.Errorf("%s: no spine-replica token may read: every lookup would be refused", rel)
		}
		rport := checkReplicaMatches(t, rel+": spine-replica", ro, o)
		published := false
		for _, p := range rep.Ports {
			parts := strings.Split(p, ":")
			published = published || parts[len(parts)-1] == strconv.Itoa(rport)
		}
		if !published {
			t.Errorf("%s: spine-replica publishes %v, none of them the --http port %d", rel, rep.Ports, rport)
		}
		if hc := strings.Join(rep.Healthcheck.Test, " "); !strings.Contains(hc, ":"+strconv.Itoa(rport)+"/readyz") {
			t.Errorf("%s: spine-replica's health check %q does not ask /readyz on port %d", rel, hc, rport)
		}
		if !strings.Contains(prom, `"spine-replica:`+strconv.Itoa(rport)+`"`) {
			t.Errorf("compose/prometheus.yml does not scrape spine-replica:%d", rport)
		}
	}

	// Kafka: the brokers Spine dials are an advertised listener.
	kafka := c.Services["kafka"]
	for _, b := range o.Brokers {
		if !strings.Contains(kafka.Environment["KAFKA_ADVERTISED_LISTENERS"], "//"+b) {
			t.Errorf("%s: broker %s is not among kafka's advertised listeners %q", rel, b, kafka.Environment["KAFKA_ADVERTISED_LISTENERS"])
		}
	}
	// The topics kafka-init creates are exactly Spine's.
	initCmd := ""
	switch v := c.Services["kafka-init"].Command.(type) {
	case []any:
		for _, s := range v {
			initCmd += " " + s.(string)
		}
	case string:
		initCmd = v
	}
	var created []string
	for _, m := range regexp.MustCompile(regexp.QuoteMeta(o.TopicPrefix)+`[a-z]+`).FindAllString(initCmd, -1) {
		if !slices.Contains(created, m) {
			created = append(created, m)
		}
	}
	slices.Sort(created)
	want := allTopics(o.TopicPrefix)
	slices.Sort(want)
	if !slices.Equal(created, want) {
		t.Errorf("%s: kafka-init creates %v, want Spine's topics %v", rel, created, want)
	}

	// ClickHouse: the native port Spine dials is the server's, and
	// Grafana's data source uses the same address and database.
	chHost, chPort := port(t, rel+": SPINE_CLICKHOUSE", o.ClickHouse)
	ch, ok := c.Services[chHost]
	if !ok {
		t.Fatalf("%s: SPINE_CLICKHOUSE names %s, which is not a service", rel, chHost)
	}
	if !slices.Contains(ch.Expose, strconv.Itoa(chPort)) {
		t.Errorf("%s: %s exposes %v, not the native port %d Spine dials", rel, chHost, ch.Expose, chPort)
	}
	if ch.Environment["CLICKHOUSE_DB"] != o.CHDatabase {
		t.Errorf("%s: ClickHouse creates database %q, Spine writes %q", rel, ch.Environment["CLICKHOUSE_DB"], o.CHDatabase)
	}
	found := false
	for _, d := range loadDatasources(t).Datasources {
		if d.Type != "grafana-clickhouse-datasource" {
			continue
		}
		found = true
		if d.JSONData.Host != chHost || d.JSONData.Port != chPort || d.JSONData.Protocol != "native" || d.JSONData.DefaultDatabase != o.CHDatabase {
			t.Errorf("Grafana's ClickHouse data source is %s:%d %s db %s; Spine uses %s:%d native db %s",
				d.JSONData.Host, d.JSONData.Port, d.JSONData.Protocol, d.JSONData.DefaultDatabase, chHost, chPort, o.CHDatabase)
		}
	}
	if !found {
		t.Error("Grafana has no ClickHouse data source")
	}
}

// k8sObject is the part of a Kubernetes object the checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas *int `yaml:"replicas"`
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
		Ports []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sPodSpec struct {
	Containers []k8sContainer `yaml:"containers"`
	Volumes    []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string `yaml:"name"`
		ValueFrom *struct {
			SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// portOf resolves a port given by number or by the container port's name.
func (c k8sContainer) portOf(p any) int {
	switch v := p.(type) {
	case int:
		return v
	case string:
		for _, cp := range c.Ports {
			if cp.Name == v {
				return cp.ContainerPort
			}
		}
	}
	return -1
}

func loadK8s(t *testing.T) map[string]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s: %v", err)
	}
	objs := map[string]k8sObject{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		for {
			var o k8sObject
			if err := dec.Decode(&o); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			objs[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	return objs
}

// checkReplicaMatches checks that a replica reads what the engine writes,
// normalizes lookups as its ingest does, and listens where other
// containers reach it; it returns the replica's port.
func checkReplicaMatches(t *testing.T, where string, ro *replicaOptions, o *runOptions) int {
	t.Helper()
	same := slices.Equal(ro.Brokers, o.Brokers) && ro.TopicPrefix == o.TopicPrefix && ro.Norm.DefaultRegion == o.DefaultRegion &&
		ro.Norm.Blocked == o.Blocked && ro.Norm.BlockedPatterns == o.BlockedPatterns && ro.Norm.BlockedDomains == o.BlockedDomains
	if !same {
		t.Errorf("%s reads %v %q with region %q and blocked %q %q %q; the engine writes %v %q with %q and %q %q %q",
			where, ro.Brokers, ro.TopicPrefix, ro.Norm.DefaultRegion, ro.Norm.Blocked, ro.Norm.BlockedPatterns, ro.Norm.BlockedDomains,
			o.Brokers, o.TopicPrefix, o.DefaultRegion, o.Blocked, o.BlockedPatterns, o.BlockedDomains)
	}
	host, p := port(t, where+" --http", ro.HTTP)
	if host != "0.0.0.0" && host != "" {
		t.Errorf("%s listens on %s: probes and other containers cannot reach it", where, ro.HTTP)
	}
	return p
}

// k8sConfig writes the file c's --config names (args: COMMAND --config
// FILE), a key of a ConfigMap mounted in pod, to a temporary file, and
// returns it with c's environment from Secrets.
func k8sConfig(t *testing.T, objs map[string]k8sObject, pod k8sPodSpec, c k8sContainer) (string, map[string]string) {
	t.Helper()
	if len(c.Args) < 3 || c.Args[1] != "--config" {
		t.Fatalf("container %s args = %v, want COMMAND --config FILE", c.Name, c.Args)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	cfgPath := c.Args[2]
	var cfgText string
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil && mounts[v.Name] == filepath.Dir(cfgPath) {
			cm, ok := objs["ConfigMap/"+v.ConfigMap.Name]
			if !ok {
				t.Fatalf("volume %s mounts ConfigMap %s, which is not in deploy/k8s", v.Name, v.ConfigMap.Name)
			}
			cfgText = cm.Data[filepath.Base(cfgPath)]
		}
	}
	if cfgText == "" {
		t.Fatalf("--config %s is not a key of a ConfigMap mounted at %s", cfgPath, filepath.Dir(cfgPath))
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			sec, ok := objs["Secret/"+ref.Name]
			if !ok {
				t.Errorf("env %s reads Secret %s, which is not in deploy/k8s", e.Name, ref.Name)
				continue
			}
			v, ok := sec.StringData[ref.Key]
			if !ok {
				t.Errorf("env %s reads key %s, which Secret %s lacks", e.Name, ref.Key, ref.Name)
			}
			env[e.Name] = v
		}
	}
	cfgFile := filepath.Join(t.TempDir(), filepath.Base(cfgPath))
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgFile, env
}

func TestDeployKubernetes(t *testing.T) {
	objs := loadK8s(t)
	sts, ok := objs["StatefulSet/spine"]
	if !ok {
		t.Fatal("deploy/k8s: no StatefulSet spine")
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
		t.Errorf("StatefulSet spine: replicas must be 1 (the engine is the single writer of its graph)")
	}
	pod := sts.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("StatefulSet spine: want one container, have %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if len(c.Args) < 3 || c.Args[0] != "run" || c.Args[1] != "--config" {
		t.Fatalf("spine container args = %v, want run --config FILE", c.Args)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	for _, e := range c.Env {
		checkEnvName(t, "spine container env", e.Name)
	}
	cfgFile, env := k8sConfig(t, objs, pod, c)
	o := parseRun(t, "ConfigMap spine.yaml with the Secret's environment", []string{"--config", cfgFile}, env)
	if o.Tokens == "" {
		t.Error("no tokens reach spine run: SPINE_TOKENS must come from the Secret")
	}

	// One port everywhere: --http, containerPort, probes, scrape
	// annotation, Service target.
	_, httpPort := port(t, "ConfigMap http", o.HTTP)
	if got := c.portOf("http"); got != httpPort {
		t.Errorf("containerPort http = %d, want the --http port %d", got, httpPort)
	}
	for name, p := range map[string]*k8sProbe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe, "startupProbe": c.StartupProbe} {
		wantPath := map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"}[name]
		if p == nil {
			t.Errorf("spine container has no %s", name)
			continue
		}
		if p.HTTPGet.Path != wantPath || c.portOf(p.HTTPGet.Port) != httpPort {
			t.Errorf("%s = GET %s on port %v, want %s on %d", name, p.HTTPGet.Path, p.HTTPGet.Port, wantPath, httpPort)
		}
	}
	ann := sts.Spec.Template.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(httpPort) || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations = %v, want scrape true, port %d, path /metrics", ann, httpPort)
	}
	for _, name := range []string{"Service/spine", "Service/spine-headless"} {
		svc, ok := objs[name]
		if !ok {
			t.Errorf("deploy/k8s: no %s", name)
			continue
		}
		for _, p := range svc.Spec.Ports {
			if c.portOf(p.TargetPort) != httpPort {
				t.Errorf("%s port %s targets %v, not the --http port %d", name, p.Name, p.TargetPort, httpPort)
			}
		}
	}

	// --data is the persistent volume.
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("StatefulSet spine: want one volume claim (Badger's), have %d", len(sts.Spec.VolumeClaimTemplates))
	}
	if got := mounts[sts.Spec.VolumeClaimTemplates[0].Metadata.Name]; got != o.Data {
		t.Errorf("the persistent volume is mounted at %q but --data is %q", got, o.Data)
	}

	// The same topics and the same ClickHouse native port as compose.
	cenv := map[string]string{}
	for k, v := range loadCompose(t).Services["spine"].Environment {
		cenv[k] = composeValue(v)
	}
	co := parseRun(t, "compose", nil, cenv)
	if o.TopicPrefix != co.TopicPrefix {
		t.Errorf("topic prefix: Kubernetes %q, compose %q", o.TopicPrefix, co.TopicPrefix)
	}
	_, kp := port(t, "ConfigMap clickhouse", o.ClickHouse)
	_, cp := port(t, "compose SPINE_CLICKHOUSE", co.ClickHouse)
	if kp != cp {
		t.Errorf("ClickHouse native port: Kubernetes %d, compose %d", kp, cp)
	}
	if o.CHDatabase != co.CHDatabase {
		t.Errorf("ClickHouse database: Kubernetes %q, compose %q", o.CHDatabase, co.CHDatabase)
	}

	// The lookup replicas: spine replica accepts their settings, they read
	// what the engine writes and normalize as it does, and one port serves
	// the probes, the scrape annotation and the Service.
	dep, ok := objs["Deployment/spine-replica"]
	if !ok {
		t.Fatal("deploy/k8s: no Deployment spine-replica")
	}
	rpod := dep.Spec.Template.Spec
	if len(rpod.Containers) != 1 || len(rpod.Containers[0].Args) == 0 || rpod.Containers[0].Args[0] != "replica" {
		t.Fatalf("Deployment spine-replica: want one container running replica, have %+v", rpod.Containers)
	}
	rc := rpod.Containers[0]
	if rc.Image != c.Image {
		t.Errorf("spine-replica runs image %q, spine %q", rc.Image, c.Image)
	}
	rcfg, renv := k8sConfig(t, objs, rpod, rc)
	fs, ro := replicaFlags()
	if err := fs.parse([]string{"--config", rcfg}, func(k string) string { return renv[k] }); err != nil {
		t.Fatalf("ConfigMap replica.yaml: spine replica would refuse it: %v", err)
	}
	if toks, err := httpapi.ParseTokens(ro.Tokens); err != nil {
		t.Errorf("spine replica's tokens from the Secret: %v", err)
	} else {
		for _, tk := range toks {
			if !slices.Equal(tk.Scopes, []httpapi.Scope{httpapi.ScopeRead}) {
				t.Errorf("a replica token has scopes %v: the replicas need read only", tk.Scopes)
			}
		}
	}
	for _, e := range rc.Env {
		if f := flagOfEnv(e.Name); strings.HasPrefix(e.Name, "SPINE_") && (fs.Lookup(f) == nil || envName(f) != e.Name) {
			t.Errorf("spine-replica env %s is not the variable of any `spine replica` flag", e.Name)
		}
	}
	rport := checkReplicaMatches(t, "ConfigMap replica.yaml", ro, o)
	if got := rc.portOf("http"); got != rport {
		t.Errorf("spine-replica containerPort http = %d, want the --http port %d", got, rport)
	}
	for name, p := range map[string]*k8sProbe{"readinessProbe": rc.ReadinessProbe, "livenessProbe": rc.LivenessProbe} {
		wantPath := map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"}[name]
		if p == nil || p.HTTPGet.Path != wantPath || rc.portOf(p.HTTPGet.Port) != rport {
			t.Errorf("spine-replica %s = %+v, want GET %s on %d", name, p, wantPath, rport)
		}
	}
	if ann := dep.Spec.Template.Metadata.Annotations; ann["prometheus.io/port"] != strconv.Itoa(rport) {
		t.Errorf("spine-replica scrape annotations = %v, want port %d", ann, rport)
	}
	if svc, ok := objs["Service/spine-replica"]; !ok {
		t.Error("deploy/k8s: no Service spine-replica")
	} else {
		for _, p := range svc.Spec.Ports {
			if rc.portOf(p.TargetPort) != rport {
				t.Errorf("Service spine-replica port %s targets %v, not the --http port %d", p.Name, p.TargetPort, rport)
			}
		}
	}
}

// TestDeployGrafanaMatchesBuiltIn keeps the Grafana dashboard equal in
// content to the built-in one: the same panels (titles), each reading a data
// source that is provisioned, ClickHouse queries reading only the spine
// tables the migrations create.
func TestDeployGrafanaMatchesBuiltIn(t *testing.T) {
	var dash struct {
		Panels []struct {
			Title      string `json:"title"`
			Datasource struct {
				Type, UID string
			} `json:"datasource"`
			Targets []struct {
				Datasource struct{ UID string } `json:"datasource"`
				RawSQL     string               `json:"rawSql"`
				Expr       string               `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(readDeploy(t, "grafana/dashboards/spine.json"), &dash); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile("../../sinks/httpapi/ui/index.html")
	if err != nil {
		t.Fatal(err)
	}
	var builtIn []string
	for _, re := range []string{`<span class="kpi-label">([^<]+)</span>`, `<section class="card panel[^"]*"[^>]*><h2>([^<]+)</h2>`} {
		for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(string(page), -1) {
			builtIn = append(builtIn, m[1])
		}
	}
	var grafana []string
	for _, p := range dash.Panels {
		grafana = append(grafana, p.Title)
	}
	slices.Sort(builtIn)
	slices.Sort(grafana)
	if len(builtIn) < 10 || !slices.Equal(builtIn, grafana) {
		t.Errorf("panels differ:\n built-in %q\n Grafana  %q", builtIn, grafana)
	}

	uids := map[string]string{}
	for _, d := range loadDatasources(t).Datasources {
		uids[d.UID] = d.Type
	}
	tables := map[string]bool{}
	files, _ := filepath.Glob("../../schemas/clickhouse/*.sql")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, m := range regexp.MustCompile(`CREATE (?:TABLE|VIEW) IF NOT EXISTS (\w+)`).FindAllStringSubmatch(string(b), -1) {
			tables[m[1]] = true
		}
	}
	fromRE := regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+([\w.]+)`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			typ, ok := uids[tg.Datasource.UID]
			if !ok {
				t.Errorf("panel %q reads data source %q, which is not provisioned", p.Title, tg.Datasource.UID)
				continue
			}
			switch typ {
			case "grafana-clickhouse-datasource":
				sql := regexp.MustCompile(`(?i)ARRAY\s+JOIN`).ReplaceAllString(tg.RawSQL, "ARRAY_JOIN")
				refs := fromRE.FindAllStringSubmatch(sql, -1)
				if len(refs) == 0 {
					t.Errorf("panel %q: no table in %q", p.Title, tg.RawSQL)
				}
				for _, m := range refs {
					db, table, ok := strings.Cut(m[1], ".")
					if !ok || db != "spine" || !tables[table] {
						t.Errorf("panel %q reads %s; want spine.<a table of schemas/clickhouse>", p.Title, m[1])
					}
				}
			case "prometheus":
				if !strings.Contains(tg.Expr, "spine_") {
					t.Errorf("panel %q: %q reads no spine metric", p.Title, tg.Expr)
				}
			}
		}
	}
}

// flagOfEnv is envName's inverse: SPINE_MAX_MB ↔ max-mb.
func flagOfEnv(name string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "SPINE_")), "_", "-")
}
