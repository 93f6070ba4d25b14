"""TLS test material: a private CA and server certificate, and a redis-server serving TLS."""
import os
import subprocess

from tests.support.processes import RedisServer, free_port


def make_certificates(directory):
    """A CA and a server certificate for 127.0.0.1 it signed (``openssl`` command)."""
    paths = {name: os.path.join(directory, name)
             for name in ('ca.key', 'ca.crt', 'server.key', 'server.csr', 'server.crt', 'san.ext')}

    def openssl(*args):
        subprocess.run(['openssl', *args], check=True, capture_output=True, timeout=60)

    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=flower-test-ca',
            '-keyout', paths['ca.key'], '-out', paths['ca.crt'])
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1',
            '-keyout', paths['server.key'], '-out', paths['server.csr'])
    with open(paths['san.ext'], 'w') as ext:
        ext.write('subjectAltName=IP:127.0.0.1\n')
    openssl('x509', '-req', '-in', paths['server.csr'], '-CA', paths['ca.crt'], '-CAkey', paths['ca.key'],
            '-CAcreateserial', '-days', '2', '-extfile', paths['san.ext'], '-out', paths['server.crt'])
    return paths


class TlsRedisServer(RedisServer):
    """A private redis-server also serving TLS on ``tls_port``."""

    def __init__(self, certificates, **kwargs):
        super().__init__(**kwargs)
        self.certificates = certificates
        self.tls_port = free_port()

    def argv(self):
        return super().argv() + [
            '--tls-port', str(self.tls_port), '--tls-auth-clients', 'no',
            '--tls-cert-file', self.certificates['server.crt'],
            '--tls-key-file', self.certificates['server.key'],
            '--tls-ca-cert-file', self.certificates['ca.crt']]
