// render: `helm template` for this project's chart, where helm itself cannot be installed
// (it is not packaged in Debian). The same engine Helm uses: Go's text/template with the
// sprig function library and Helm's own include, required, toYaml and tpl, over
// .Values (values.yaml, then each --values file, then each --set), .Release and .Chart.
//
//	render [--release NAME] [--namespace NS] [--values FILE]... [--set a.b=c]... CHART_DIR
//
// Prints every template (not the _*.tpl helpers) as a YAML document headed
// "# Source: CHART/templates/FILE", as helm template does; documents that render to
// nothing are left out. Exits non-zero on any template or YAML error.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "render: "+format+"\n", args...)
	os.Exit(1)
}

func readYAML(path string) map[string]interface{} {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		fail("%s: %v", path, err)
	}
	return out
}

// merge copies src into dst, maps merged key by key (Helm's coalescing of values files).
func merge(dst, src map[string]interface{}) {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// set applies one --set a.b.c=value (value parsed as YAML: numbers, booleans, strings).
func set(values map[string]interface{}, assignment string) {
	eq := strings.IndexByte(assignment, '=')
	if eq <= 0 {
		fail("--set %q: want key=value", assignment)
	}
	var value interface{}
	if err := yaml.Unmarshal([]byte(assignment[eq+1:]), &value); err != nil {
		value = assignment[eq+1:]
	}
	// Keys split at dots, except escaped ones ("a.k8s\\.cluster\\.name"), as helm --set does.
	var keys []string
	var key strings.Builder
	path := assignment[:eq]
	for i := 0; i < len(path); i++ {
		switch {
		case path[i] == '\\' && i+1 < len(path) && path[i+1] == '.':
			key.WriteByte('.')
			i++
		case path[i] == '.':
			keys = append(keys, key.String())
			key.Reset()
		default:
			key.WriteByte(path[i])
		}
	}
	keys = append(keys, key.String())
	m := values
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = value
}

func toYAML(v interface{}) string {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func main() {
	release := flag.String("release", "kspan", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	var valueFiles, sets multi
	flag.Var(&valueFiles, "values", "a values file (repeatable)")
	flag.Var(&sets, "set", "a value, key.path=value (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fail("usage: render [--release NAME] [--namespace NS] [--values FILE]... [--set k=v]... CHART_DIR")
	}
	chartDir := flag.Arg(0)

	chartFile := readYAML(filepath.Join(chartDir, "Chart.yaml"))
	chart := map[string]interface{}{}
	for k, v := range chartFile {
		chart[strings.ToUpper(k[:1])+k[1:]] = v // .Chart.AppVersion, as Helm spells them
	}
	values := readYAML(filepath.Join(chartDir, "values.yaml"))
	for _, f := range valueFiles {
		merge(values, readYAML(f))
	}
	for _, s := range sets {
		set(values, s)
	}
	top := map[string]interface{}{
		"Values":  values,
		"Chart":   chart,
		"Release": map[string]interface{}{"Name": *release, "Namespace": *namespace, "Service": "Helm", "IsInstall": true},
	}

	root := template.New("chart").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	funcs["toYaml"] = toYAML
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil || v == "" {
			return nil, fmt.Errorf("%s", msg)
		}
		return v, nil
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var b bytes.Buffer
		err := root.ExecuteTemplate(&b, name, data)
		return b.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		err = t.Execute(&b, data)
		return b.String(), err
	}
	root.Funcs(funcs)

	files, _ := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	sort.Strings(files)
	var outputs []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fail("%v", err)
		}
		name := filepath.Base(f)
		if _, err := root.New(name).Parse(string(data)); err != nil {
			fail("%v", err)
		}
		if !strings.HasPrefix(name, "_") && (strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			outputs = append(outputs, name)
		}
	}
	chartName := fmt.Sprint(chart["Name"])
	for _, name := range outputs {
		var b bytes.Buffer
		if err := root.ExecuteTemplate(&b, name, top); err != nil {
			fail("%v", err)
		}
		// Each document of the file on its own, checked as YAML, empty ones dropped.
		for _, doc := range strings.Split(b.String(), "\n---") {
			var parsed interface{}
			if err := yaml.Unmarshal([]byte(doc), &parsed); err != nil {
				fail("templates/%s renders invalid YAML: %v\n%s", name, err, doc)
			}
			if parsed == nil {
				continue
			}
			fmt.Printf("---\n# Source: %s/templates/%s\n%s\n", chartName, name, strings.Trim(doc, "\n"))
		}
	}
}
