package keys

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
)

// LoadTLS reads a PEM certificate chain and its PEM private key for
// serving HTTPS. The key file gets the checks of ReadPrivateFile (owned by
// the current user, no access for the group or others), the certificate
// those of ReadConfig (owned by the current user, not writable by the
// group or others). Errors name the files and never carry key material
// (crypto/tls's errors are fixed strings).
func LoadTLS(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := readKeyFile(filepath.Dir(certFile), filepath.Base(certFile), false)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := readKeyFile(filepath.Dir(keyFile), filepath.Base(keyFile), true)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("failed to load the TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}
