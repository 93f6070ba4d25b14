"""The PostgreSQL test fixture: private servers, a fresh database per test, crashes."""
from tests.support.processes import port_is_open


def test_each_test_gets_an_empty_database_of_its_own(session_postgres, postgres_url):
    dbname = postgres_url.rsplit('/', 1)[1]
    assert postgres_url == session_postgres.url(dbname)
    tables = session_postgres.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                                   dbname)
    assert tables.strip() == '0'
    assert session_postgres.port != 5432


def test_killed_server_restarts_with_committed_rows(postgres_cluster):
    dbname = postgres_cluster.create_database('outage')
    postgres_cluster.psql('CREATE TABLE kept (n int); INSERT INTO kept VALUES (1), (2)', dbname)
    postgres_cluster.kill()
    assert postgres_cluster.postmaster_pid() is None
    assert not port_is_open(postgres_cluster.port)
    postgres_cluster.start()
    assert postgres_cluster.psql('SELECT sum(n) FROM kept', dbname).strip() == '3'


def test_stop_and_restart(postgres_cluster):
    postgres_cluster.restart()
    assert postgres_cluster.psql('SELECT 1').strip() == '1'
    postgres_cluster.stop()
    assert not port_is_open(postgres_cluster.port)
    assert postgres_cluster.postmaster_pid() is None
