"""A small Server-Sent Events client for the tests, over a plain socket.

It parses the HTTP/1.1 response (chunked) itself so that a test can stop
reading at will: a client that stops reading is what the stream must survive.
"""
import collections
import json
import socket
import time


class SseClient:
    def __init__(self, port, path, headers=None, timeout=10.0):
        self.socket = socket.create_connection(('127.0.0.1', port), timeout=timeout)
        lines = [f'GET {path} HTTP/1.1', f'Host: 127.0.0.1:{port}', 'Accept: text/event-stream']
        lines += [f'{name}: {value}' for name, value in (headers or {}).items()]
        self.socket.sendall(('\r\n'.join(lines) + '\r\n\r\n').encode())
        self._raw = b''
        self._body = b''
        self.status, self.headers = self._read_head()
        self.comments = []
        self._messages = collections.deque()

    def _fill(self):
        data = self.socket.recv(65536)
        if not data:
            raise ConnectionError('the server closed the stream')
        self._raw += data

    def _read_head(self):
        while b'\r\n\r\n' not in self._raw:
            self._fill()
        head, self._raw = self._raw.split(b'\r\n\r\n', 1)
        status_line, *header_lines = head.decode('latin-1').split('\r\n')
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(':')
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    def read_rest(self):
        """The whole body of a non-streaming answer (an error)."""
        length = int(self.headers.get('content-length', 0))
        while len(self._raw) < length:
            self._fill()
        return self._raw[:length].decode()

    def _dechunk(self):
        """Move complete chunks of the raw bytes into the body."""
        while True:
            line_end = self._raw.find(b'\r\n')
            if line_end < 0:
                return
            size = int(self._raw[:line_end].split(b';')[0], 16)
            if len(self._raw) < line_end + 2 + size + 2:
                return
            self._body += self._raw[line_end + 2:line_end + 2 + size]
            self._raw = self._raw[line_end + 2 + size + 2:]

    def _parse_blocks(self):
        """Split every complete message out of the body at once (no quadratic copying)."""
        *blocks, self._body = self._body.split(b'\n\n')
        for block in blocks:
            message = {'id': None, 'event': 'message', 'data': None}
            data = []
            for line in block.decode().split('\n'):
                if line.startswith(':'):
                    self.comments.append(line[1:].strip())
                    continue
                field, _, value = line.partition(': ')
                if field == 'data':
                    data.append(value)
                elif field in ('id', 'event'):
                    message[field] = value
            if data:
                message['data'] = json.loads('\n'.join(data))
                message['id'] = int(message['id']) if message['id'] is not None else None
                self._messages.append(message)

    def next_event(self, timeout=10.0):
        """The next message as ``{'id', 'event', 'data'}`` (comments are kept aside)."""
        deadline = time.monotonic() + timeout
        while not self._messages:
            self._dechunk()
            self._parse_blocks()
            if self._messages:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError('no event in time')
            self.socket.settimeout(remaining)
            try:
                self._fill()
            except TimeoutError:
                raise TimeoutError('no event in time') from None
        return self._messages.popleft()

    def events_until(self, predicate, timeout=20.0):
        """Messages read until one satisfies ``predicate`` (included)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            message = self.next_event(max(0.1, deadline - time.monotonic()))
            seen.append(message)
            if predicate(message):
                return seen

    def close(self):
        self.socket.close()
