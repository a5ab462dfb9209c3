// Command bareproxy is the smallest reverse proxy Go has (net/http/httputil),
// logging one line a request to stderr as the front door logs to the
// journal: a reference for BenchmarkFrontDoorLatency (e2e/latency_test.go).
//
//	bareproxy LISTEN UPSTREAM
package main

import (
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: bareproxy LISTEN UPSTREAM")
	}
	p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: os.Args[2]})
	l := log.New(os.Stderr, "", 0)
	log.Fatal(http.ListenAndServe(os.Args[1], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		p.ServeHTTP(w, r)
		l.Printf("%s %s %s %s %v", r.RemoteAddr, r.Method, r.Host, r.RequestURI, time.Since(t0))
	})))
}
