/** The views of one project: its board, its task list and its workflow. */
import type { Project } from '../api/types.ts';
import { Link } from '../router.tsx';

export function ProjectTabs({ project, current }: { project: Project; current: 'board' | 'list' | 'workflow' }) {
  const tab = (view: typeof current) => (current === view ? 'page' : undefined);
  return (
    <nav aria-label={`Views of ${project.name}`} className="tabs">
      <Link to={`/projects/${project.id}`} aria-current={tab('board')}>
        Board
      </Link>
      <Link to={`/tasks?project=${project.id}`} aria-current={tab('list')}>
        List
      </Link>
      <Link to={`/projects/${project.id}/workflow`} aria-current={tab('workflow')}>
        Workflow
      </Link>
    </nav>
  );
}
