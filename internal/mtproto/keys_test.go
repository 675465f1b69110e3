package mtproto

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func TestParsePublicKeys(t *testing.T) {
	k1, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k1.PublicKey)})
	pkixDER, err := x509.MarshalPKIXPublicKey(&k2.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkix := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkixDER})
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})
	broken := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: []byte("not DER")})

	join := func(parts ...[]byte) []byte { return bytes.Join(parts, []byte("\n")) }
	tests := []struct {
		name    string
		in      []byte
		want    []*rsa.PublicKey
		wantErr string
	}{
		{"pkcs1", pkcs1, []*rsa.PublicKey{&k1.PublicKey}, ""},
		{"pkix", pkix, []*rsa.PublicKey{&k2.PublicKey}, ""},
		{"both, with comments around", join([]byte("# keys\n"), pkcs1, pkix, []byte("\n")), []*rsa.PublicKey{&k1.PublicKey, &k2.PublicKey}, ""},
		{"empty", nil, nil, "no PEM block"},
		{"junk", []byte("hello world"), nil, "no PEM block"},
		{"trailing junk", join(pkcs1, []byte("garbage")), nil, "unexpected data after PEM block 1"},
		{"certificate", cert, nil, `block 1 ("CERTIFICATE"): unsupported block type`},
		{"broken DER", join(pkix, broken), nil, `block 2 ("RSA PUBLIC KEY"): parse PKCS#1 public key`},
		{"ecdsa", ecPEM, nil, "not RSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePublicKeys(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !got[i].Equal(tt.want[i]) {
					t.Errorf("key %d differs", i)
				}
			}
		})
	}
}
