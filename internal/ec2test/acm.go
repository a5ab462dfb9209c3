package ec2test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ACM (AWS Certificate Manager, a JSON API: X-Amz-Target
// CertificateManager.ACTION) for the load balancer's HTTPS listener:
// public certificates validated by DNS. The fake cannot see DNS: a
// certificate stays PENDING_VALIDATION with its CNAME records until the
// test calls IssueCertificates. An HTTPS listener with an issued
// certificate is, with HAProxy, a second HAProxy terminating TLS with a
// self-signed certificate for the certificate's names.

type certificate struct {
	arn, domain string
	sans        []string
	status      string
	tags        map[string]string
	created     time.Time
}

var acmActions = map[string]func(*Server, map[string]any) (any, error){
	"RequestCertificate":     (*Server).requestCertificate,
	"DescribeCertificate":    (*Server).describeCertificate,
	"ListCertificates":       (*Server).listCertificates,
	"ListTagsForCertificate": (*Server).listTagsForCertificate,
	"DeleteCertificate":      (*Server).deleteCertificate,
}

// serveACM answers one ACM request (called by serve for X-Amz-Target
// CertificateManager.*).
func (s *Server) serveACM(w http.ResponseWriter, hr *http.Request, target string) {
	action := strings.TrimPrefix(target, "CertificateManager.")
	s.mu.Lock()
	s.calls[action]++
	s.mu.Unlock()
	fail := func(status int, typ, msg string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
	}
	if !strings.HasPrefix(hr.Header.Get("Authorization"), "AWS4-HMAC-SHA256") {
		fail(http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	h := acmActions[action]
	if h == nil {
		fail(http.StatusBadRequest, "UnknownOperationException", "the fake does not know "+action)
		return
	}
	var in map[string]any
	b, _ := io.ReadAll(io.LimitReader(hr.Body, 1<<20))
	if err := json.Unmarshal(b, &in); err != nil {
		fail(http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	out, err := h(s, in)
	if err != nil {
		e := err.(*apiError)
		fail(e.status, e.code, e.message)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

// domainRE is a DNS name ACM takes: labels of letters, digits and
// hyphens, optionally a leading wildcard label.
var domainRE = regexp.MustCompile(`^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$`)

func str(in map[string]any, k string) string { v, _ := in[k].(string); return v }

func strs(in map[string]any, k string) []string {
	var out []string
	l, _ := in[k].([]any)
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func (s *Server) certByArn(arn string) *certificate {
	for _, c := range s.certs {
		if c.arn == arn {
			return c
		}
	}
	return nil
}

func (s *Server) requestCertificate(in map[string]any) (any, error) {
	domain := str(in, "DomainName")
	if !domainRE.MatchString(domain) || len(domain) > 253 {
		return nil, elbErr(400, "ValidationException", "1 validation error detected: Value '%s' at 'domainName' failed to satisfy constraint", domain)
	}
	if m := str(in, "ValidationMethod"); m != "DNS" {
		return nil, elbErr(400, "ValidationException", "the fake validates by DNS only, not %q", m)
	}
	sans := strs(in, "SubjectAlternativeNames")
	if len(sans) > 10 {
		return nil, elbErr(400, "LimitExceededException", "a certificate has at most 10 names here")
	}
	for _, n := range sans {
		if !domainRE.MatchString(n) {
			return nil, elbErr(400, "InvalidDomainValidationOptionsException", "'%s' is not a valid domain name", n)
		}
	}
	if !slices.Contains(sans, domain) {
		sans = append([]string{domain}, sans...)
	}
	tags := map[string]string{}
	l, _ := in["Tags"].([]any)
	for _, t := range l {
		m, _ := t.(map[string]any)
		tags[str(m, "Key")] = str(m, "Value")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &certificate{arn: "arn:aws:acm:" + region + ":" + s.Account + ":certificate/" + requestID(), domain: domain, sans: sans,
		status: "PENDING_VALIDATION", tags: tags, created: time.Now()}
	s.certs = append(s.certs, c)
	return map[string]string{"CertificateArn": c.arn}, nil
}

// validationRecord is the CNAME ACM asks for name.
func validationRecord(name string) map[string]string {
	base := strings.TrimPrefix(name, "*.")
	return map[string]string{"Name": "_" + shortHash("n"+base) + "." + base + ".", "Type": "CNAME",
		"Value": "_" + shortHash("v"+base) + shortHash("w"+base) + ".xyzzy.acm-validations.aws."}
}

func (s *Server) describeCertificate(in map[string]any) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.certByArn(str(in, "CertificateArn"))
	if c == nil {
		return nil, elbErr(400, "ResourceNotFoundException", "Could not find certificate %s.", str(in, "CertificateArn"))
	}
	var dvo []any
	for _, n := range c.sans {
		status := "PENDING_VALIDATION"
		if c.status == "ISSUED" {
			status = "SUCCESS"
		}
		dvo = append(dvo, map[string]any{"DomainName": n, "ValidationMethod": "DNS", "ValidationStatus": status, "ResourceRecord": validationRecord(n)})
	}
	return map[string]any{"Certificate": map[string]any{"CertificateArn": c.arn, "DomainName": c.domain, "SubjectAlternativeNames": c.sans,
		"Status": c.status, "Type": "AMAZON_ISSUED", "DomainValidationOptions": dvo, "CreatedAt": float64(c.created.Unix())}}, nil
}

func (s *Server) listCertificates(in map[string]any) (any, error) {
	statuses := strs(in, "CertificateStatuses")
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []any
	for _, c := range s.certs {
		if len(statuses) > 0 && !slices.Contains(statuses, c.status) {
			continue
		}
		out = append(out, map[string]any{"CertificateArn": c.arn, "DomainName": c.domain, "SubjectAlternativeNameSummaries": c.sans, "Status": c.status})
	}
	return map[string]any{"CertificateSummaryList": out}, nil
}

func (s *Server) listTagsForCertificate(in map[string]any) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.certByArn(str(in, "CertificateArn"))
	if c == nil {
		return nil, elbErr(400, "ResourceNotFoundException", "Could not find certificate %s.", str(in, "CertificateArn"))
	}
	var tags []any
	for _, t := range tagSet(c.tags) {
		tags = append(tags, map[string]string{"Key": t.Key, "Value": t.Value})
	}
	return map[string]any{"Tags": tags}, nil
}

func (s *Server) deleteCertificate(in map[string]any) (any, error) {
	arn := str(in, "CertificateArn")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.certByArn(arn) == nil {
		return nil, elbErr(400, "ResourceNotFoundException", "Could not find certificate %s.", arn)
	}
	for _, l := range s.listeners {
		if l.cert == arn {
			return nil, elbErr(400, "ResourceInUseException", "Certificate %s is in use by %s", arn, l.arn)
		}
	}
	s.certs = slices.DeleteFunc(s.certs, func(c *certificate) bool { return c.arn == arn })
	return map[string]any{}, nil
}

// IssueCertificates issues the certificates pending validation, as ACM
// does once it sees their CNAME records, and returns how many.
func (s *Server) IssueCertificates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.certs {
		if c.status == "PENDING_VALIDATION" {
			c.status = "ISSUED"
			n++
		}
	}
	return n
}

// Certificates returns the names of each certificate, by ARN.
func (s *Server) Certificates() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for _, c := range s.certs {
		out[c.arn] = slices.Clone(c.sans)
	}
	return out
}

// selfSigned writes a self-signed certificate and key for names, in one
// PEM file as HAProxy's crt wants.
func selfSigned(names []string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})...), nil
}
