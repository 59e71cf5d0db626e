// An HTTPS server and client on Go's crypto/tls, for tests/integration/tls_go_test.cc
// (built there with Debian's go, standard library only, with and without symbols).
//
//	tlsapp server PORT CERT KEY h1|h2 [DOWNSTREAM]
//	    serves GET /hello/N (200, "hello N") and /missing (404); with DOWNSTREAM (a base
//	    URL), GET /call/N first fetches DOWNSTREAM/hello/N from a new goroutine and waits
//	    for it, then answers with what it got
//	tlsapp client BASE CACERT h1|h2 PATH...
//	    GETs BASE+PATH for each PATH in order on one connection, prints "PATH STATUS"
//	tlsapp pclient BASE CACERT h1|h2 PATH...
//	    as client, but all the GETs at once (one goroutine each), printed in PATH order
//	tlsapp bench BASE CACERT h1|h2 SECONDS
//	    GETs BASE/hello/0 one after another on one connection for SECONDS (bench/: the
//	    tls_go section), prints "requests N p50_us X"
//
// h1 turns HTTP/2 off (an empty TLSNextProto); h2 offers it by ALPN (Go's default).
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

func client(caFile, mode string) *http.Client {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 1}
	if mode == "h1" {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	} else {
		tr.ForceAttemptHTTP2 = true
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tlsapp server|client ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		port, cert, key, mode := os.Args[2], os.Args[3], os.Args[4], os.Args[5]
		var down *http.Client
		downstream := ""
		if len(os.Args) > 6 {
			downstream = os.Args[6]
			down = client(cert, mode)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/hello/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello %s\n", strings.TrimPrefix(r.URL.Path, "/hello/"))
		})
		mux.HandleFunc("/call/", func(w http.ResponseWriter, r *http.Request) {
			if down == nil {
				http.Error(w, "no downstream", http.StatusInternalServerError)
				return
			}
			type result struct {
				status int
				body   string
				err    error
			}
			done := make(chan result, 1)
			go func() {
				s, b, err := get(down, downstream+"/hello/"+strings.TrimPrefix(r.URL.Path, "/call/"))
				done <- result{s, b, err}
			}()
			res := <-done
			if res.err != nil {
				http.Error(w, res.err.Error(), http.StatusBadGateway)
				return
			}
			fmt.Fprintf(w, "downstream said %d %s", res.status, res.body)
		})
		srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: mux}
		if mode == "h1" {
			srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		}
		if err := srv.ListenAndServeTLS(cert, key); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "client":
		base, ca, mode := os.Args[2], os.Args[3], os.Args[4]
		c := client(ca, mode)
		for _, path := range os.Args[5:] {
			status, _, err := get(c, base+path)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Printf("%s %d\n", path, status)
		}
	case "pclient":
		base, ca, mode := os.Args[2], os.Args[3], os.Args[4]
		c := client(ca, mode)
		paths := os.Args[5:]
		statuses := make([]int, len(paths))
		errs := make(chan error, len(paths))
		for i, path := range paths {
			go func(i int, path string) {
				status, _, err := get(c, base+path)
				statuses[i] = status
				errs <- err
			}(i, path)
		}
		for range paths {
			if err := <-errs; err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		for i, path := range paths {
			fmt.Printf("%s %d\n", path, statuses[i])
		}
	case "bench":
		base, ca, mode := os.Args[2], os.Args[3], os.Args[4]
		seconds, _ := strconv.Atoi(os.Args[5])
		c := client(ca, mode)
		var lat []time.Duration
		end := time.Now().Add(time.Duration(seconds) * time.Second)
		for time.Now().Before(end) && len(lat) < 10000000 {
			t := time.Now()
			if _, _, err := get(c, base+"/hello/0"); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			lat = append(lat, time.Since(t))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p50 := 0.0
		if len(lat) > 0 {
			p50 = float64(lat[len(lat)/2].Nanoseconds()) / 1000
		}
		fmt.Printf("requests %d p50_us %.1f\n", len(lat), p50)
	}
}
