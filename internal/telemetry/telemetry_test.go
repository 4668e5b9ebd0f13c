package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Profiles are served only when asked for (--pprof); health is always.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	for _, on := range []bool{false, true} {
		tel, err := New(context.Background(), Config{NodeID: 1, Pprof: on, Getenv: func(string) string { return "" }})
		if err != nil {
			t.Fatal(err)
		}
		h := tel.Handler()
		for path, want := range map[string]int{
			"/healthz":                       http.StatusOK,
			"/debug/pprof/":                  map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on],
			"/debug/pprof/goroutine?debug=1": map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on],
		} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != want {
				t.Errorf("pprof=%v: GET %s = %d, want %d", on, path, rec.Code, want)
			}
		}
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
