// Checks of the local stack that need no Docker engine (this machine has
// none): both compose files parse and hang together (services, ports,
// volumes, build targets, broker flags), the Dockerfile's stages are
// consistent, the Prometheus config parses and scrapes the brokers' metrics
// ports, and the Grafana dashboard's queries name only metrics listed in
// metrics.txt. runlocal_test.go runs the no-Docker stack for real.
package localstack_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// composeFiles are the stacks; both must pass every check.
var composeFiles = []string{"docker-compose.yml", "docker-compose.localstack.yml"}

type compose struct {
	Name     string             `yaml:"name"`
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string            `yaml:"image"`
	Build       *build            `yaml:"build"`
	Hostname    string            `yaml:"hostname"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   dependsOn         `yaml:"depends_on"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Profiles    []string          `yaml:"profiles"`
}

type build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
	Target     string `yaml:"target"`
}

// dependsOn accepts both forms compose allows: a list of names, or a map
// of name to condition.
type dependsOn []string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		*d = names
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for name, c := range m {
			switch c.Condition {
			case "service_started", "service_healthy", "service_completed_successfully":
			default:
				return fmt.Errorf("depends_on %s: unknown condition %q", name, c.Condition)
			}
			*d = append(*d, name)
		}
		slices.Sort(*d)
	default:
		return fmt.Errorf("depends_on must be a list or a map")
	}
	return nil
}

func loadCompose(t *testing.T, path string) compose {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(c.Services) == 0 {
		t.Fatalf("%s has no services", path)
	}
	return c
}

// flags parses a broker command (serve --k=v --k v ...) into flag -> values.
func flags(t *testing.T, command []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for i := 0; i < len(command); i++ {
		arg := command[i]
		if !strings.HasPrefix(arg, "-") {
			if i == 0 {
				continue // the subcommand
			}
			t.Errorf("stray argument %q in %q", arg, command)
			continue
		}
		name, value, ok := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !ok {
			if i+1 >= len(command) {
				t.Errorf("flag %s has no value in %q", arg, command)
				continue
			}
			i++
			value = command[i]
		}
		out[name] = append(out[name], value)
	}
	return out
}

func one(t *testing.T, svc string, f map[string][]string, name string) string {
	t.Helper()
	if len(f[name]) != 1 {
		t.Errorf("%s: want exactly one --%s, have %q", svc, name, f[name])
		return ""
	}
	return f[name][0]
}

// published parses a port mapping [IP:]HOST:CONTAINER[/proto].
func published(t *testing.T, mapping string) (host, container string) {
	t.Helper()
	spec, _, _ := strings.Cut(mapping, "/")
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 2:
		return parts[0], parts[1]
	case 3:
		if parts[0] != "127.0.0.1" {
			t.Errorf("port %q is published on %s; publish on 127.0.0.1 only", mapping, parts[0])
		}
		return parts[1], parts[2]
	}
	t.Errorf("port mapping %q: want [IP:]HOST:CONTAINER", mapping)
	return "", ""
}

// brokers returns the broker services: those built from the tiercel target.
func brokers(c compose) []string {
	var names []string
	for name, s := range c.Services {
		if s.Build != nil && s.Build.Target == "tiercel" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func TestComposeServicesDependenciesPortsVolumes(t *testing.T) {
	for _, file := range composeFiles {
		t.Run(file, func(t *testing.T) {
			c := loadCompose(t, file)
			hostPorts := map[string]string{}
			for name, s := range c.Services {
				if s.Image == "" && s.Build == nil {
					t.Errorf("%s: neither image nor build", name)
				}
				for _, dep := range s.DependsOn {
					if _, ok := c.Services[dep]; !ok {
						t.Errorf("%s depends on %q, which is not a service", name, dep)
					}
					if dep == name {
						t.Errorf("%s depends on itself", name)
					}
				}
				for _, p := range s.Ports {
					host, _ := published(t, p)
					if other, dup := hostPorts[host]; dup {
						t.Errorf("host port %s is published by both %s and %s", host, other, name)
					}
					hostPorts[host] = name
				}
				for _, v := range s.Volumes {
					src, _, _ := strings.Cut(v, ":")
					if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
						if _, err := os.Stat(src); err != nil {
							t.Errorf("%s mounts %s, which does not exist: %v", name, src, err)
						}
					} else if _, ok := c.Volumes[src]; !ok {
						t.Errorf("%s uses volume %q, which is not declared", name, src)
					}
				}
				if b := s.Build; b != nil {
					if b.Context != ".." || b.Dockerfile != "localstack/Dockerfile" {
						t.Errorf("%s: build from context %q, dockerfile %q; want .. and localstack/Dockerfile", name, b.Context, b.Dockerfile)
					}
					if !slices.Contains(dockerfileStageNames(t), b.Target) {
						t.Errorf("%s builds target %q, which is not a stage of the Dockerfile", name, b.Target)
					}
				}
			}
			// Every service must come up in the default profile, except
			// tools.
			for name, s := range c.Services {
				if len(s.Profiles) > 0 && !slices.Equal(s.Profiles, []string{"tools"}) {
					t.Errorf("%s is in profiles %q", name, s.Profiles)
				}
			}
			for _, want := range []string{"prometheus", "grafana", "mkbucket"} {
				if _, ok := c.Services[want]; !ok {
					t.Errorf("no %s service", want)
				}
			}
		})
	}
}

// comingFlags are the flags the cluster and operations issues add; the
// compose files use them already.
var comingFlags = []string{"gossip-listen", "join", "metrics-listen"}

func TestComposeBrokers(t *testing.T) {
	known := binaryFlags(t)
	for _, file := range composeFiles {
		t.Run(file, func(t *testing.T) {
			c := loadCompose(t, file)
			names := brokers(c)
			if len(names) != 3 {
				t.Fatalf("want three brokers, have %q", names)
			}
			nodeIDs := map[string]string{}
			advertised := map[string]string{}
			var objectStore, endpoint string
			for _, name := range names {
				s := c.Services[name]
				if len(s.Command) == 0 || s.Command[0] != "serve" {
					t.Errorf("%s: command must start with serve, have %q", name, s.Command)
					continue
				}
				f := flags(t, s.Command)
				for flag := range f {
					if !known[flag] && !slices.Contains(comingFlags, flag) {
						t.Errorf("%s: --%s is neither a flag of tiercel serve nor one of %q", name, flag, comingFlags)
					}
				}
				id := one(t, name, f, "node-id")
				if n, err := strconv.Atoi(id); err != nil || n < 0 {
					t.Errorf("%s: --node-id %q is not a broker id", name, id)
				}
				if other, dup := nodeIDs[id]; dup {
					t.Errorf("%s and %s both have --node-id %s", other, name, id)
				}
				nodeIDs[id] = name

				// Advertised as service-name:port, the same port it listens
				// on and publishes, so one address works inside the network
				// and from the host.
				adv := one(t, name, f, "advertise")
				if other, dup := advertised[adv]; dup {
					t.Errorf("%s and %s both advertise %s", other, name, adv)
				}
				advertised[adv] = name
				advHost, advPort, err := net.SplitHostPort(adv)
				if err != nil || (advHost != name && advHost != s.Hostname) {
					t.Errorf("%s advertises %q; want %s:PORT", name, adv, name)
				}
				_, listenPort, _ := net.SplitHostPort(one(t, name, f, "listen"))
				if listenPort != advPort {
					t.Errorf("%s listens on port %s but advertises port %s", name, listenPort, advPort)
				}
				if !slices.ContainsFunc(s.Ports, func(p string) bool {
					h, ctr := published(t, p)
					return h == advPort && ctr == advPort
				}) {
					t.Errorf("%s does not publish its Kafka port %s as %s:%s", name, advPort, advPort, advPort)
				}

				// --join names the other brokers' gossip ports, never itself.
				_, gossipPort, _ := net.SplitHostPort(one(t, name, f, "gossip-listen"))
				var joined []string
				for _, seed := range strings.Split(one(t, name, f, "join"), ",") {
					h, p, err := net.SplitHostPort(seed)
					if err != nil || !slices.Contains(names, h) || h == name || p != gossipPort {
						t.Errorf("%s: --join entry %q is not another broker's gossip address", name, seed)
					}
					joined = append(joined, h)
				}
				slices.Sort(joined)
				if others := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == name }); !slices.Equal(joined, others) {
					t.Errorf("%s joins %q, want all the others %q", name, joined, others)
				}

				// One object store, on a service of this file, with the
				// credentials in the environment.
				os1, ep := one(t, name, f, "object-store"), one(t, name, f, "s3-endpoint")
				if objectStore == "" {
					objectStore, endpoint = os1, ep
				} else if os1 != objectStore || ep != endpoint {
					t.Errorf("%s uses %s at %s; the others %s at %s", name, os1, ep, objectStore, endpoint)
				}
				for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} {
					if s.Environment[v] == "" {
						t.Errorf("%s has no %s", name, v)
					}
				}
			}

			if objectStore != "s3://tiercel/cluster" {
				t.Errorf("object store %q, want s3://tiercel/cluster", objectStore)
			}
			u, err := url.Parse(endpoint)
			if err != nil || u.Scheme != "http" {
				t.Fatalf("--s3-endpoint %q is not an http URL", endpoint)
			}
			store := u.Hostname()
			if _, ok := c.Services[store]; !ok {
				t.Errorf("--s3-endpoint names %q, which is not a service", store)
			}
			for _, name := range names {
				if !slices.Contains(c.Services[name].DependsOn, "mkbucket") {
					t.Errorf("%s does not wait for mkbucket", name)
				}
			}

			// mkbucket creates the brokers' bucket on the brokers' endpoint,
			// with their credentials.
			mk := c.Services["mkbucket"]
			mf := flags(t, append([]string{"mkbucket"}, mk.Command...))
			if one(t, "mkbucket", mf, "endpoint") != endpoint {
				t.Errorf("mkbucket --endpoint %q, brokers use %q", mf["endpoint"], endpoint)
			}
			if got := "s3://" + one(t, "mkbucket", mf, "bucket") + "/cluster"; got != objectStore {
				t.Errorf("mkbucket creates %q, brokers use %q", got, objectStore)
			}
			if !slices.Contains(mk.DependsOn, store) {
				t.Errorf("mkbucket does not depend on %s", store)
			}
			broker := c.Services[names[0]]
			for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
				if mk.Environment[v] != broker.Environment[v] {
					t.Errorf("mkbucket's %s differs from the brokers'", v)
				}
			}
			if st := c.Services[store]; st.Environment["MINIO_ROOT_USER"] != "" {
				if st.Environment["MINIO_ROOT_USER"] != broker.Environment["AWS_ACCESS_KEY_ID"] ||
					st.Environment["MINIO_ROOT_PASSWORD"] != broker.Environment["AWS_SECRET_ACCESS_KEY"] {
					t.Error("the brokers' AWS credentials are not MinIO's root user and password")
				}
			}
		})
	}
}

// binaryFlags builds the broker and returns the flags `tiercel serve
// --help` lists, so that the compose files cannot use a misspelt flag.
func binaryFlags(t *testing.T) map[string]bool {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tiercel")
	build := exec.Command("go", "build", "-o", bin, "../cmd/tiercel")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tiercel: %v\n%s", err, out)
	}
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+--?([a-z0-9][a-z0-9-]*)\b`).FindAllStringSubmatch(string(out), -1) {
		known[m[1]] = true
	}
	for _, want := range []string{"node-id", "listen", "advertise", "object-store", "s3-endpoint"} {
		if !known[want] {
			t.Fatalf("tiercel serve --help does not list --%s; the help parser is out of date:\n%s", want, out)
		}
	}
	return known
}

// ------------------------------------------------------------ Dockerfile

type dockerStage struct {
	name, base string
	lines      []string // instructions of the stage, continuation lines joined
}

var dockerfile struct {
	once   sync.Once
	args   map[string]string // ARGs before the first FROM, with defaults
	stages []dockerStage
	err    error
}

// parseDockerfile reads localstack/Dockerfile into its global ARGs and stages.
func parseDockerfile(t *testing.T) {
	t.Helper()
	dockerfile.once.Do(func() {
		f, err := os.Open("Dockerfile")
		if err != nil {
			dockerfile.err = err
			return
		}
		defer f.Close()
		dockerfile.args = map[string]string{}
		var logical []string
		var cur strings.Builder
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
				continue
			}
			if strings.HasSuffix(line, "\\") {
				cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
				continue
			}
			cur.WriteString(line)
			logical = append(logical, cur.String())
			cur.Reset()
		}
		if err := sc.Err(); err != nil {
			dockerfile.err = err
			return
		}
		for _, l := range logical {
			fields := strings.Fields(l)
			switch strings.ToUpper(fields[0]) {
			case "FROM":
				args := slices.DeleteFunc(fields[1:], func(s string) bool { return strings.HasPrefix(s, "--") })
				st := dockerStage{base: args[0]}
				if len(args) == 3 && strings.EqualFold(args[1], "AS") {
					st.name = args[2]
				} else if len(args) != 1 {
					dockerfile.err = fmt.Errorf("cannot read %q", l)
					return
				}
				dockerfile.stages = append(dockerfile.stages, st)
			case "ARG":
				if len(dockerfile.stages) == 0 {
					name, def, _ := strings.Cut(fields[1], "=")
					dockerfile.args[name] = def
					continue
				}
				fallthrough
			default:
				if len(dockerfile.stages) == 0 {
					dockerfile.err = fmt.Errorf("instruction before the first FROM: %q", l)
					return
				}
				last := &dockerfile.stages[len(dockerfile.stages)-1]
				last.lines = append(last.lines, l)
			}
		}
	})
	if dockerfile.err != nil {
		t.Fatalf("Dockerfile: %v", dockerfile.err)
	}
}

func dockerfileStageNames(t *testing.T) []string {
	parseDockerfile(t)
	var names []string
	for _, s := range dockerfile.stages {
		names = append(names, s.name)
	}
	return names
}

func TestDockerfileStages(t *testing.T) {
	parseDockerfile(t)
	seen := map[string]bool{}
	for i, st := range dockerfile.stages {
		if st.name == "" {
			t.Errorf("stage %d (FROM %s) has no name", i, st.base)
		}
		if seen[st.name] {
			t.Errorf("two stages are named %q", st.name)
		}
		// Build args in FROM must be declared before the first FROM.
		for _, m := range regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(st.base, -1) {
			if _, ok := dockerfile.args[m[1]]; !ok {
				t.Errorf("FROM %s uses ARG %s, which is not declared before the first FROM", st.base, m[1])
			}
		}
		for _, l := range st.lines {
			for _, m := range regexp.MustCompile(`--from=(\S+)`).FindAllStringSubmatch(l, -1) {
				if !seen[m[1]] {
					t.Errorf("stage %s: %q copies from %q, which is not an earlier stage", st.name, l, m[1])
				}
			}
		}
		seen[st.name] = true
	}

	// The images: static binaries on a minimal base, run as non-root.
	for _, name := range []string{"tiercel", "mkbucket", "minio"} {
		i := slices.IndexFunc(dockerfile.stages, func(s dockerStage) bool { return s.name == name })
		if i < 0 {
			t.Errorf("no stage %s", name)
			continue
		}
		st := dockerfile.stages[i]
		if !strings.HasPrefix(st.base, "gcr.io/distroless/static") && st.base != "scratch" {
			t.Errorf("image %s is FROM %s; want distroless/static or scratch", name, st.base)
		}
		user := ""
		for _, l := range st.lines {
			if f := strings.Fields(l); strings.EqualFold(f[0], "USER") {
				user = f[1]
			}
		}
		if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
			t.Errorf("image %s runs as %q; want a non-root USER", name, user)
		}
	}
	// The broker image is the last stage, so a plain `docker build` makes it.
	if last := dockerfile.stages[len(dockerfile.stages)-1]; last.name != "tiercel" {
		t.Errorf("the last stage is %s; want tiercel", last.name)
	}
	build := dockerfile.stages[slices.IndexFunc(dockerfile.stages, func(s dockerStage) bool { return s.name == "build" })]
	all := strings.Join(build.lines, "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/tiercel", "./localstack/cmd/mkbucket"} {
		if !strings.Contains(all, want) {
			t.Errorf("the build stage does not contain %q", want)
		}
	}
}

// The Dockerfile builds the MinIO the tests use, and a Go at least as new
// as go.mod asks for.
func TestDockerfileVersionsMatchRepository(t *testing.T) {
	parseDockerfile(t)
	script, err := os.ReadFile("../scripts/install-minio.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^readonly PINNED_VERSION="([^"]+)"`).FindSubmatch(script)
	if m == nil {
		t.Fatal("scripts/install-minio.sh has no PINNED_VERSION line")
	}
	if got := dockerfile.args["MINIO_VERSION"]; got != string(m[1]) {
		t.Errorf("Dockerfile MINIO_VERSION=%s, scripts/install-minio.sh pins %s", got, m[1])
	}

	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gm := regexp.MustCompile(`(?m)^go (\d+(?:\.\d+)*)`).FindSubmatch(gomod)
	if gm == nil {
		t.Fatal("go.mod has no go line")
	}
	if got := dockerfile.args["GO_VERSION"]; compareVersions(got, string(gm[1])) < 0 {
		t.Errorf("Dockerfile GO_VERSION=%s is older than go.mod's go %s", got, gm[1])
	}
}

// compareVersions compares dotted numeric versions (1.26 < 1.26.1).
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// ------------------------------------------------------------ Prometheus

type promConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		RelabelConfigs []struct {
			SourceLabels []string `yaml:"source_labels"`
			Regex        string   `yaml:"regex"`
			TargetLabel  string   `yaml:"target_label"`
			Replacement  string   `yaml:"replacement"`
		} `yaml:"relabel_configs"`
	} `yaml:"scrape_configs"`
}

var promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

func TestPrometheusConfig(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command("promtool", "check", "config", "--syntax-only", "prometheus.yml").CombinedOutput(); err != nil {
			t.Errorf("promtool check config: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool is not on PATH; prometheus.yml is checked by parsing only")
	}

	data, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg promConfig
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true) // a misspelt key is an error, as in Prometheus
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	for _, d := range []string{cfg.Global.ScrapeInterval, cfg.Global.EvaluationInterval} {
		if !promDuration.MatchString(d) {
			t.Errorf("%q is not a Prometheus duration", d)
		}
	}
	jobs := map[string][]string{}
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "" {
			t.Error("a scrape config has no job_name")
		}
		if _, dup := jobs[sc.JobName]; dup {
			t.Errorf("job %s is defined twice", sc.JobName)
		}
		if !strings.HasPrefix(sc.MetricsPath, "/") {
			t.Errorf("job %s: metrics_path %q", sc.JobName, sc.MetricsPath)
		}
		for _, rc := range sc.RelabelConfigs {
			if _, err := regexp.Compile("^(?:" + rc.Regex + ")$"); err != nil {
				t.Errorf("job %s: relabel regex %q: %v", sc.JobName, rc.Regex, err)
			}
		}
		for _, st := range sc.StaticConfigs {
			jobs[sc.JobName] = append(jobs[sc.JobName], st.Targets...)
		}
	}

	// Every target is a service of each stack, and the tiercel job scrapes
	// exactly the brokers, on their --metrics-listen port.
	for _, file := range composeFiles {
		c := loadCompose(t, file)
		if !slices.ContainsFunc(c.Services["prometheus"].Volumes, func(v string) bool {
			return strings.HasPrefix(v, "./prometheus.yml:")
		}) {
			t.Errorf("%s: prometheus does not mount ./prometheus.yml", file)
		}
		for job, targets := range jobs {
			for _, target := range targets {
				host, _, err := net.SplitHostPort(target)
				if err != nil {
					t.Errorf("job %s: target %q is not host:port", job, target)
					continue
				}
				if _, ok := c.Services[host]; !ok {
					t.Errorf("%s: job %s scrapes %q, which is not a service", file, job, host)
				}
			}
		}
		var want []string
		for _, name := range brokers(c) {
			f := flags(t, c.Services[name].Command)
			_, port, _ := net.SplitHostPort(one(t, name, f, "metrics-listen"))
			want = append(want, name+":"+port)
		}
		got := slices.Sorted(slices.Values(jobs["tiercel"]))
		if !slices.Equal(got, want) {
			t.Errorf("%s: job tiercel scrapes %q, want the brokers' metrics ports %q", file, got, want)
		}
	}
}

// ------------------------------------------------------------ Grafana

func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name string `yaml:"name"`
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 {
		t.Fatalf("datasources: apiVersion %d, %d data sources; want 1 and 1", ds.APIVersion, len(ds.Datasources))
	}
	src := ds.Datasources[0]
	if src.Type != "prometheus" || src.URL != "http://prometheus:9090" {
		t.Errorf("data source %s is %s at %s; want prometheus at http://prometheus:9090", src.Name, src.Type, src.URL)
	}

	var dash struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/tiercel.yml", &dash)
	if dash.APIVersion != 1 || len(dash.Providers) != 1 || dash.Providers[0].Type != "file" {
		t.Fatalf("dashboard provider: %+v", dash)
	}
	for _, file := range composeFiles {
		c := loadCompose(t, file)
		g := c.Services["grafana"]
		mounts := map[string]string{}
		for _, v := range g.Volumes {
			parts := strings.Split(v, ":")
			mounts[parts[0]] = parts[1]
		}
		if mounts["./grafana/provisioning"] != "/etc/grafana/provisioning" {
			t.Errorf("%s: grafana does not mount ./grafana/provisioning at /etc/grafana/provisioning", file)
		}
		if mounts["./grafana/dashboards"] != dash.Providers[0].Options.Path {
			t.Errorf("%s: grafana mounts ./grafana/dashboards at %q, the provider reads %q", file, mounts["./grafana/dashboards"], dash.Providers[0].Options.Path)
		}
		if _, ok := c.Services["prometheus"]; !ok {
			t.Errorf("%s has no prometheus service for the data source", file)
		}
	}

	// The dashboard's data source variable defaults to this data source.
	d := loadDashboard(t)
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Current.Value != src.UID {
			t.Errorf("dashboard variable %s defaults to %v, the provisioned data source's uid is %s", v.Name, v.Current.Value, src.UID)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name    string `json:"name"`
			Type    string `json:"type"`
			Query   any    `json:"query"`
			Current struct {
				Value any `json:"value"`
			} `json:"current"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of collapsed rows
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile("grafana/dashboards/tiercel.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("tiercel.json: %v", err)
	}
	return d
}

// loadMetricList reads metrics.txt: one Prometheus metric name a line,
// sorted, no duplicates.
func loadMetricList(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	valid := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if !slices.IsSorted(lines) {
		t.Error("metrics.txt is not sorted")
	}
	names := map[string]bool{}
	for i, l := range lines {
		if !valid.MatchString(l) {
			t.Errorf("metrics.txt line %d: %q is not a metric name", i+1, l)
		}
		if names[l] {
			t.Errorf("metrics.txt lists %s twice", l)
		}
		names[l] = true
	}
	return names
}

// promqlWords are the PromQL words that are not metric names: aggregation
// operators, keywords, and the words of binary operators.
var promqlWords = map[string]bool{
	"sum": true, "avg": true, "min": true, "max": true, "count": true, "group": true,
	"stddev": true, "stdvar": true, "topk": true, "bottomk": true, "quantile": true,
	"count_values": true, "limitk": true, "limit_ratio": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true,
	"inf": true, "nan": true,
}

// labelListWords take a parenthesised list of label names.
var labelListWords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// metricNames returns the metric names a PromQL expression uses. It skips
// strings, label matchers {...}, ranges [...], Grafana variables ($x,
// ${x}), numbers, functions (an identifier followed by "("), PromQL words,
// and the label lists of by/without/on/ignoring/group_left/group_right.
// Grafana's label_values(metric, label) yields its metric.
func metricNames(expr string) ([]string, error) {
	if m := regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`).FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	var names []string
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
	isIdent := func(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }
	// skipTo returns the index after the close that ends the group opening
	// at i, stepping over quoted strings inside it.
	skipTo := func(i int, close byte) (int, error) {
		for j := i + 1; j < len(expr); j++ {
			switch expr[j] {
			case close:
				return j + 1, nil
			case '"', '\'', '`':
				q := expr[j]
				for j++; j < len(expr) && expr[j] != q; j++ {
					if expr[j] == '\\' && q != '`' {
						j++
					}
				}
			}
		}
		return 0, fmt.Errorf("unclosed %q at %d in %q", expr[i], i, expr)
	}
	depth := 0
	for i := 0; i < len(expr); {
		c := expr[i]
		var err error
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unclosed string in %q", expr)
			}
			i = j + 1
		case c == '{':
			i, err = skipTo(i, '}')
		case c == '[':
			i, err = skipTo(i, ']')
		case c == '$':
			i++
			if i < len(expr) && expr[i] == '{' {
				i, err = skipTo(i, '}')
			} else {
				for i < len(expr) && isIdent(expr[i]) {
					i++
				}
			}
		case c >= '0' && c <= '9' || (c == '.' && i+1 < len(expr) && expr[i+1] >= '0' && expr[i+1] <= '9'):
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n') {
				k++
			}
			followedByParen := k < len(expr) && expr[k] == '('
			switch {
			case labelListWords[strings.ToLower(word)] && followedByParen:
				j, err = skipTo(k, ')')
			case promqlWords[strings.ToLower(word)] || followedByParen:
			default:
				names = append(names, word)
			}
			i = j
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced ) in %q", expr)
			}
			i++
		case c == '}' || c == ']':
			return nil, fmt.Errorf("unbalanced %q in %q", c, expr)
		default:
			i++
		}
		if err != nil {
			return nil, err
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced ( in %q", expr)
	}
	return names, nil
}

func TestMetricNamesTokenizer(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (api) (rate(tiercel_requests_total{instance=~"$instance", api!="x"}[$__rate_interval]))`: {"tiercel_requests_total"},
		`histogram_quantile(0.99, sum by (api, le) (rate(tiercel_request_duration_seconds_bucket[5m])))`: {"tiercel_request_duration_seconds_bucket"},
		`max(a_total) / on(instance) group_left(topic) b_bytes > bool 1e3`:                               {"a_total", "b_bytes"},
		`sum without (le) (x offset 5m) or vector(0) unless y`:                                           {"x", "y"},
		`label_values(tiercel_bytes_in_total, topic)`:                                                    {"tiercel_bytes_in_total"},
		`label_values(tiercel_bytes_in_total{job="tiercel"}, topic)`:                                     {"tiercel_bytes_in_total"},
		`topk(5, sum by (topic) (${metric_prefix}_x + go_goroutine_count))`:                              {"_x", "go_goroutine_count"},
	} {
		got, err := metricNames(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %q, want %q", expr, got, want)
		}
	}
	for _, bad := range []string{`sum(rate(x[5m])`, `x{a="b"`, `rate(x[5m]))`, `x{a="b}`} {
		if _, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%s) found no error", bad)
		}
	}
}

func TestDashboardUsesListedMetrics(t *testing.T) {
	listed := loadMetricList(t)
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard has no uid or title")
	}
	used := map[string]bool{}
	check := func(where, expr string) {
		names, err := metricNames(expr)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		if len(names) == 0 {
			t.Errorf("%s: %q names no metric", where, expr)
		}
		for _, n := range names {
			used[n] = true
			if !listed[n] {
				t.Errorf("%s uses %s, which metrics.txt does not list", where, n)
			}
		}
	}

	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := map[int]bool{}
	for _, p := range all {
		if ids[p.ID] {
			t.Errorf("two panels have id %d", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for i, target := range p.Targets {
			check(fmt.Sprintf("panel %q query %d", p.Title, i), target.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := v.Query
		if m, ok := q.(map[string]any); ok {
			q = m["query"]
		}
		s, ok := q.(string)
		if !ok {
			t.Errorf("variable %s: cannot read its query %v", v.Name, v.Query)
			continue
		}
		check("variable "+v.Name, s)
	}
	for n := range listed {
		if !used[n] {
			t.Errorf("metrics.txt lists %s, which no dashboard query uses", n)
		}
	}

	// Panels must not overlap on the 24-column grid.
	for i, a := range d.Panels {
		if a.GridPos.W <= 0 || a.GridPos.H <= 0 || a.GridPos.X+a.GridPos.W > 24 {
			t.Errorf("panel %q has grid position %+v", a.Title, a.GridPos)
		}
		for _, b := range d.Panels[i+1:] {
			if a.GridPos.X < b.GridPos.X+b.GridPos.W && b.GridPos.X < a.GridPos.X+a.GridPos.W &&
				a.GridPos.Y < b.GridPos.Y+b.GridPos.H && b.GridPos.Y < a.GridPos.Y+a.GridPos.H {
				t.Errorf("panels %q and %q overlap", a.Title, b.Title)
			}
		}
	}
}
