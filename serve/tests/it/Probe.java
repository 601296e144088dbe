// pgjdbc against connaudit serve, the way Metabase, DBeaver and Tableau use it: the catalog
// through DatabaseMetaData, then a prepared statement with a parameter. Prints key<TAB>value.
import java.sql.*;

public class Probe {
    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0], args[1], args[2])) {
            DatabaseMetaData meta = c.getMetaData();
            System.out.println("product\t" + meta.getDatabaseProductName() + " " + meta.getDatabaseProductVersion());
            try (ResultSet rs = meta.getSchemas()) {
                while (rs.next()) System.out.println("schema\t" + rs.getString("TABLE_SCHEM"));
            }
            try (ResultSet rs = meta.getTables(null, null, "%", new String[] {"TABLE", "VIEW"})) {
                while (rs.next()) System.out.println("table\t" + rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME") + " " + rs.getString("TABLE_TYPE"));
            }
            try (ResultSet rs = meta.getColumns(null, "public", "events", "%")) {
                while (rs.next()) System.out.println("column\t" + rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME"));
            }
            // The warehouse has no keys or indexes: empty answers, with the columns pgjdbc names.
            try (ResultSet rs = meta.getPrimaryKeys(null, "public", "events")) {
                ResultSetMetaData m = rs.getMetaData();
                StringBuilder labels = new StringBuilder();
                for (int i = 1; i <= m.getColumnCount(); i++) labels.append(m.getColumnLabel(i)).append(' ');
                int n = 0;
                while (rs.next()) n++;
                System.out.println("primary keys\t" + n + " " + labels.toString().trim());
            }
            try (ResultSet rs = meta.getIndexInfo(null, "public", "events", false, true)) {
                int n = 0;
                while (rs.next()) n++;
                System.out.println("indexes\t" + n);
            }
            try (PreparedStatement s = c.prepareStatement(
                    "SELECT count(*) AS n, min(ts) AS first, min(date) AS day FROM events WHERE clientid = ? AND ts >= ?")) {
                s.setString(1, args[3]);
                s.setTimestamp(2, Timestamp.valueOf("2000-01-01 00:00:00"));
                for (int round = 0; round < 6; round++) { // pgjdbc switches to a named statement after 5
                    try (ResultSet rs = s.executeQuery()) {
                        rs.next();
                        ResultSetMetaData m = rs.getMetaData();
                        System.out.println("count\t" + rs.getLong("n"));
                        System.out.println("types\t" + m.getColumnTypeName(2) + " " + m.getColumnTypeName(3));
                        System.out.println("first\t" + rs.getObject("first", java.time.OffsetDateTime.class));
                        System.out.println("day\t" + rs.getObject("day", java.time.LocalDate.class));
                    }
                }
            }
            try (Statement s = c.createStatement()) {
                s.executeUpdate("DELETE FROM events");
                System.out.println("delete\tallowed");
            } catch (SQLException e) {
                System.out.println("delete\trefused " + e.getSQLState());
            }
        }
    }
}
