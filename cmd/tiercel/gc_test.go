package main

import "testing"

func TestDecideGC(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	const cache = 256 << 20
	for _, c := range []struct {
		name string
		env  map[string]string
		want gcPolicy
	}{
		{"defaults", nil, gcPolicy{gcPercent: 400, memoryLimit: 1<<30 + cache + cache/2}},
		{"operator's GOGC wins, and no limit is added to it", map[string]string{"GOGC": "100"}, gcPolicy{}},
		{"operator's GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "2GiB"}, gcPolicy{gcPercent: 400}},
	} {
		if got := decideGC(env(c.env), cache); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
